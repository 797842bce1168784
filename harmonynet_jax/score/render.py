"""PDF engraving: verovio (pip only, the default), or LilyPond / MuseScore when installed.

verovio lays out MusicXML into SVG pages; cairosvg turns each into a PDF page (with the
Leipzig font registered, see `harmonynet_jax.score.font`) and pypdf joins them. LilyPond goes
through musicxml2ly with `--npl` (music21's page-layout hints otherwise squeeze systems), and
MuseScore runs headless. Each returns the page count.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harmonynet_jax.config import ScoreConfig

ENGRAVERS = ("auto", "verovio", "lilypond", "musescore")
MUSESCORE_BINARIES = ("mscore", "musescore", "mscore4portable", "musescore4", "mscore3")


def available_engravers() -> list[str]:
    """Engravers usable on this machine (verovio is a Python dependency)."""
    out = ["verovio"]
    if shutil.which("musicxml2ly") and shutil.which("lilypond"):
        out.append("lilypond")
    if _musescore() is not None:
        out.append("musescore")
    return out


def _musescore() -> str | None:
    for name in MUSESCORE_BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


def render_pdf(musicxml: Path, pdf: Path, engraver: str, cfg: ScoreConfig) -> tuple[str, int]:
    """Engrave `musicxml` to `pdf`; returns (engraver used, pages)."""
    if engraver not in ENGRAVERS:
        raise ValueError(f"engraver must be one of {ENGRAVERS}, not {engraver!r}")
    pdf.parent.mkdir(parents=True, exist_ok=True)
    if engraver in ("auto", "verovio"):
        return "verovio", render_verovio(musicxml, pdf, cfg)
    if engraver == "lilypond":
        return "lilypond", render_lilypond(musicxml, pdf, cfg)
    return "musescore", render_musescore(musicxml, pdf, cfg)


def verovio_svgs(musicxml: Path, cfg: ScoreConfig) -> list[str]:
    """One SVG string per page."""
    import verovio

    # Layout notes ("insufficient space to draw mixed beam") are not the user's concern;
    # real failures still surface through loadFile's result.
    verovio.enableLog(verovio.LOG_ERROR)
    tk = verovio.toolkit()
    tk.setOptions(dict(cfg.verovio_options))
    if not tk.loadFile(str(musicxml)):
        raise RuntimeError(f"verovio could not read {musicxml}")
    return [tk.renderToSVG(page) for page in range(1, tk.getPageCount() + 1)]


def render_verovio(musicxml: Path, pdf: Path, cfg: ScoreConfig) -> int:
    import cairosvg
    from pypdf import PdfReader, PdfWriter

    from harmonynet_jax.score.font import ensure_music_font

    ensure_music_font()
    writer = PdfWriter()
    svgs = verovio_svgs(musicxml, cfg)
    for svg in svgs:
        page = cairosvg.svg2pdf(bytestring=svg.encode("utf-8"))
        for p in PdfReader(io.BytesIO(page)).pages:
            writer.add_page(p)
    with open(pdf, "wb") as fh:
        writer.write(fh)
    return len(svgs)


def _run(cmd: list[str], cwd: Path, cfg: ScoreConfig, env: dict[str, str] | None = None
         ) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          timeout=cfg.engraver_timeout_s, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {done.stderr[-2000:]}")


def pdf_pages(pdf: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(str(pdf)).pages)


def render_lilypond(musicxml: Path, pdf: Path, cfg: ScoreConfig) -> int:
    """musicxml2ly --npl (ignore music21's layout hints) then lilypond, in a scratch dir."""
    if "lilypond" not in available_engravers():
        raise RuntimeError("LilyPond is not installed (Debian: apt-get install lilypond)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ly = work / "score.ly"
        _run(["musicxml2ly", "--npl", "--no-beaming", "-o", str(ly), str(musicxml.resolve())],
             work, cfg)
        _run(["lilypond", "-dno-point-and-click", "-o", str(work / "score"), str(ly)], work, cfg)
        shutil.move(str(work / "score.pdf"), pdf)
    return pdf_pages(pdf)


def render_musescore(musicxml: Path, pdf: Path, cfg: ScoreConfig) -> int:
    """MuseScore headless (offscreen Qt platform, no display needed)."""
    binary = _musescore()
    if binary is None:
        raise RuntimeError("MuseScore is not installed")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        _run([binary, "-o", str(pdf.resolve()), str(musicxml.resolve())], Path(tmp), cfg, env)
    return pdf_pages(pdf)
