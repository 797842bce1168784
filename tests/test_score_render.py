"""PDF engraving: verovio path (default), page counts, the music font, LilyPond when present."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from harmonynet_jax import score
from harmonynet_jax.score.font import ensure_music_font

BEAT = 0.5  # 120 BPM


def scale_piece(bars: int) -> list[tuple[float, float, int, int]]:
    """Eighth-note scales over a half-note bass, `bars` bars of 4/4."""
    notes = []
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    for bar in range(bars):
        for i in range(8):
            t = (bar * 4 + i * 0.5) * BEAT
            notes.append((t, t + 0.45 * BEAT, scale[(i + bar) % 8] + 12, 72))
        for half in range(2):
            t = (bar * 4 + half * 2) * BEAT
            notes.append((t, t + 1.9 * BEAT, 48 - 5 * half, 60))
    return notes


def music_glyph_fonts(pdf: Path) -> list[str]:
    """Base names of the fonts that draw SMuFL (private-use) characters, e.g. the tempo note,
    and whose outlines are CFF (our Leipzig build); a system fallback would be TrueType."""
    out = []
    for page in PdfReader(str(pdf)).pages:
        for ref in page["/Resources"].get("/Font", {}).values():
            font = ref.get_object()
            cmap = font.get("/ToUnicode")
            if cmap is None or not re.search(rb"<e[0-9a-f]{3}>", cmap.get_object().get_data()):
                continue
            for desc in font.get("/DescendantFonts", []):
                descriptor = desc.get_object()["/FontDescriptor"].get_object()
                if "/FontFile3" in descriptor:
                    out.append(str(font["/BaseFont"]))
    return out


def test_single_page_pdf_with_music_font(tmp_path: Path) -> None:
    info = score.write(scale_piece(4), tmp_path / "s.musicxml", tmp_path / "s.pdf",
                       title="Scales", composer="Nobody")
    data = (tmp_path / "s.pdf").read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 2000
    assert info.engraver == "verovio" and info.pages == 1
    assert len(PdfReader(str(tmp_path / "s.pdf")).pages) == 1
    # The tempo mark's note is a Leipzig character: it must be drawn from our font.
    assert music_glyph_fonts(tmp_path / "s.pdf")


def test_long_piece_is_merged_into_one_multi_page_pdf(tmp_path: Path) -> None:
    info = score.write(scale_piece(24), tmp_path / "l.musicxml", tmp_path / "l.pdf")
    pages = len(PdfReader(str(tmp_path / "l.pdf")).pages)
    assert pages >= 2 and info.pages == pages


def test_music_font_is_built_from_verovio_glyphs() -> None:
    from fontTools.ttLib import TTFont

    font = TTFont(str(ensure_music_font()))
    cmap = font.getBestCmap()
    assert 0xE1D5 in cmap  # metNoteQuarterUp, used by tempo marks
    assert 0xE52D in cmap  # dynamicMF
    assert font["name"].getDebugName(1) == "Leipzig"


@pytest.mark.skipif("lilypond" not in score.available_engravers(),
                    reason="LilyPond is not installed")
def test_lilypond_engraver(tmp_path: Path) -> None:
    info = score.write(scale_piece(4), tmp_path / "y.musicxml", tmp_path / "y.pdf",
                       engraver="lilypond", title="Scales")
    assert info.engraver == "lilypond" and info.pages >= 1
    assert (tmp_path / "y.pdf").read_bytes().startswith(b"%PDF")
