"""The Leipzig music font for cairosvg, built from verovio's own glyph outlines.

Verovio draws noteheads as SVG paths, but text-borne SMuFL glyphs (the note in a tempo mark,
dynamics letters) are `<tspan font-family="Leipzig">` characters, and verovio ships that font
only as WOFF2 inside CSS, which cairo cannot use. We compile the glyph outlines verovio ships
(its data/Leipzig/*.xml) into an OpenType font once (cached per verovio version) and register
it with fontconfig for this process only, so cairosvg finds "Leipzig" like any system font.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import tempfile
from pathlib import Path
from xml.etree import ElementTree

from harmonynet_jax.cache import cache_dir

FAMILY = "Leipzig"
UNITS_PER_EM = 1000  # verovio's Leipzig.xml bounding boxes and glyph paths use 1000 units
ASCENT, DESCENT = 1000, -1000  # music glyphs reach far above and below the baseline


def _verovio_data() -> tuple[Path, str]:
    import verovio

    tk = verovio.toolkit()
    return Path(tk.getResourcePath()), str(tk.getVersion())


def build_font(data: Path, out: Path) -> Path:
    """Compile data/Leipzig/<codepoint>.xml outlines (+ advances from Leipzig.xml) to OTF."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.boundsPen import BoundsPen
    from fontTools.pens.t2CharStringPen import T2CharStringPen
    from fontTools.svgLib.path import parse_path

    advances = {}
    for g in ElementTree.parse(data / f"{FAMILY}.xml").getroot().iter("g"):
        advances[g.get("c", "")] = int(float(g.get("h-a-x", g.get("w", "0"))))
    charstrings, metrics, cmap = {}, {}, {}
    names = [".notdef"]
    for path in sorted((data / FAMILY).glob("*.xml")):
        code = path.stem
        shape = ElementTree.parse(path).getroot().find(".//path")
        if shape is None:
            continue
        name = f"uni{code.upper()}"
        adv = advances.get(code, UNITS_PER_EM // 2)
        pen, bounds = T2CharStringPen(adv, None), BoundsPen(None)
        parse_path(shape.get("d", ""), pen)
        parse_path(shape.get("d", ""), bounds)
        charstrings[name] = pen.getCharString()
        metrics[name] = (adv, int(bounds.bounds[0]) if bounds.bounds else 0)
        cmap[int(code, 16)] = name
        names.append(name)
    empty = T2CharStringPen(UNITS_PER_EM // 2, None)
    charstrings[".notdef"] = empty.getCharString()
    metrics[".notdef"] = (UNITS_PER_EM // 2, 0)
    fb = FontBuilder(UNITS_PER_EM, isTTF=False)
    fb.setupGlyphOrder(names)
    fb.setupCharacterMap(cmap)
    fb.setupCFF(FAMILY, {"FullName": FAMILY}, charstrings, {})
    fb.setupHorizontalMetrics(metrics)
    fb.setupHorizontalHeader(ascent=ASCENT, descent=DESCENT)
    fb.setupNameTable({"familyName": FAMILY, "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=ASCENT, sTypoDescender=DESCENT, usWinAscent=ASCENT,
                usWinDescent=-DESCENT)
    fb.setupPost()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    fb.save(str(tmp))
    tmp.replace(out)  # atomic: concurrent builders never see half a font
    return out


def _cache_dir() -> Path:
    path = cache_dir("fonts")
    try:
        path.mkdir(parents=True, exist_ok=True)
        return path
    except OSError:
        return Path(tempfile.gettempdir()) / "harmonynet_jax"


@functools.cache
def ensure_music_font() -> Path:
    """Build (once) and register the Leipzig font for this process; returns the font file."""
    data, version = _verovio_data()
    font = _cache_dir() / f"{FAMILY}-verovio-{version}.otf"
    if not font.exists():
        build_font(data, font)
    lib_name = ctypes.util.find_library("fontconfig")
    if lib_name is None:
        raise RuntimeError("fontconfig not found: cairo cannot draw the music font")
    fontconfig = ctypes.CDLL(lib_name)
    fontconfig.FcConfigAppFontAddFile.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    if not fontconfig.FcConfigAppFontAddFile(None, str(font).encode()):
        raise RuntimeError(f"fontconfig refused {font}")
    return font
