"""Performed notes -> a readable grand-staff score: MusicXML 4.0 and PDF.

    from harmonynet_jax import score
    info = score.write(notes, "out.musicxml", "out.pdf", pedals=pedals, title="Prelude")

`notes` are (onset s, offset s, pitch, velocity) tuples or objects with those attributes;
`pedals` are (onset s, offset s). `tempo` (quarter notes per minute) and `time_signature`
("3/4", "6/8", ...) override the estimates. `durations="sounding"` says the offsets are how
long the notes ring, pedal included (the transcriber's frame decoder), not key releases: the
written lengths are then estimated (`score.sounding`). See docs/score.md for the stages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from music21 import stream

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.musicxml import validation_errors, write_musicxml
from harmonynet_jax.score.pipeline import ScoreInfo, analyze
from harmonynet_jax.score.render import available_engravers, render_pdf

__all__ = ["ScoreInfo", "available_engravers", "build_score", "validation_errors", "write"]


def build_score(notes: Iterable[Any], *, pedals: Iterable[Any] | None = None,
                title: str | None = None, composer: str | None = None,
                tempo: float | None = None, time_signature: str | None = None,
                cfg: ScoreConfig | None = None, durations: str = "played") -> stream.Score:
    """The music21 `Score` (two staves, braced) for callers that want the object."""
    return analyze(notes, pedals=pedals, title=title, composer=composer, tempo=tempo,
                   time_signature=time_signature, cfg=cfg, durations=durations)[0]


def write(notes: Iterable[Any], musicxml_path: str | Path, pdf_path: str | Path | None = None,
          *, pedals: Iterable[Any] | None = None, title: str | None = None,
          composer: str | None = None, tempo: float | None = None,
          time_signature: str | None = None, engraver: str = "auto",
          cfg: ScoreConfig | None = None, durations: str = "played") -> ScoreInfo:
    """Write MusicXML (and a PDF when `pdf_path` is given); returns what was estimated.

    engraver: "auto"/"verovio" (pip only), "lilypond" or "musescore" (when installed).
    durations: "played" (key releases, pedal as `pedals` spans: MIDI, the token decoder) or
    "sounding" (how long each note rings, pedal included: the frame decoder); with
    "sounding" the written lengths are estimated before quantisation.
    """
    cfg = cfg or ScoreConfig()
    score, info = analyze(notes, pedals=pedals, title=title, composer=composer, tempo=tempo,
                          time_signature=time_signature, cfg=cfg, durations=durations)
    xml = write_musicxml(score, musicxml_path)
    info = replace(info, musicxml_path=str(xml))
    if pdf_path is not None:
        used, pages = render_pdf(xml, Path(pdf_path), engraver, cfg)
        info = replace(info, pdf_path=str(pdf_path), engraver=used, pages=pages)
    return info
