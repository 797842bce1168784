"""Notes -> music21 Score: the stages of `harmonynet_jax.score` in order.

(written lengths, for sounding durations) -> tempo (beats) -> meter (beat level, meter,
pickup) -> hands -> quantise -> key -> notation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np
from music21 import key as m21key
from music21 import stream

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.events import Note, normalize_notes, normalize_pedals
from harmonynet_jax.score.hands import part_writing, split_hands
from harmonynet_jax.score.keys import estimate_key
from harmonynet_jax.score.meter import Rhythm, choose_rhythm, parse_time_signature
from harmonynet_jax.score.notation import build_stream, make_layout
from harmonynet_jax.score.quantize import Quantized, quantize
from harmonynet_jax.score.sounding import held_basses, written_lengths
from harmonynet_jax.score.tempo import (
    BeatGrid,
    OnsetAnalysis,
    candidate_periods,
    extend_beats,
    regular_grid,
    track_pulse,
)

DEFAULT_BPM = 100.0  # for input with too few onsets to measure a tempo
MIN_GROUPS_TO_TRACK = 4
EDGE_BEATS = 4  # tracked beats added before the first and after the last note
DURATIONS = ("played", "sounding")  # what a note's offset means (see `analyze`)
QL_DENOMINATOR = 48  # pedal marks and the ritardando land on 1/48ths of a quarter


@dataclass(frozen=True)
class ScoreInfo:
    """What the score came out as (estimates or the caller's overrides)."""

    tempo_bpm: float  # quarter notes per minute at the start
    time_signature: str
    key: str  # e.g. "E- major" (music21 spelling: '-' is flat)
    bars: int
    anacrusis: float  # quarter lengths of the pickup bar, 0 without one
    notes: int
    notes_per_staff: tuple[int, int]  # (upper / right hand, lower / left hand)
    musicxml_path: str | None = None
    pdf_path: str | None = None
    engraver: str | None = None
    pages: int = 0


def track_grids(notes: list[Note], onsets: OnsetAnalysis, tempo: float | None,
                cfg: ScoreConfig) -> list[BeatGrid]:
    """Tracked beat grids, one per candidate pulse (the caller's tempo: just that one)."""
    groups = onsets.groups
    start, end = notes[0].onset, max(n.offset for n in notes)
    if len(groups.times) < MIN_GROUPS_TO_TRACK:
        period = 60.0 / (tempo or DEFAULT_BPM)
        return [regular_grid(start - EDGE_BEATS * period, end + period, period)]
    env = onsets.envelope
    grids = []
    for period in [60.0 / tempo] if tempo is not None else candidate_periods(env, cfg):
        ratio = cfg.override_range if tempo is not None else cfg.track_range
        beats = track_pulse(env, groups, period, (start, groups.times[-1]), cfg, ratio)
        grids.append(BeatGrid(extend_beats(beats, start - EDGE_BEATS * period,
                                           end + EDGE_BEATS * period, period)))
    return grids


def _bpm(rhythm: Rhythm, tempo: float | None, cfg: ScoreConfig) -> float:
    """Metronome number for the counted beat, from the opening tempo."""
    beat_quarters = float(rhythm.meter.beat_ql)
    if tempo is not None:
        bpm = tempo / beat_quarters
    else:
        first = int(np.floor(rhythm.origin))
        span = rhythm.grid.times[max(0, first): max(0, first) + 2 * rhythm.meter.beats_per_bar
                                 + 2]
        bpm = 60.0 / float(np.median(np.diff(span))) if len(span) > 1 else DEFAULT_BPM
    return max(cfg.tempo_round, cfg.tempo_round * round(bpm / cfg.tempo_round))


def ritardando_start(rhythm: Rhythm, last_onset: float, cfg: ScoreConfig) -> Fraction | None:
    """Where the closing slow-down starts (quarter lengths), if the music ends in one.

    The beats up to the last onset are compared with their median period: when the final
    beats are `rit_slowing` longer, the ritardando starts after the last beat that was not
    yet `rit_onset` longer (so tempo drift within a phrase is never marked).
    """
    periods = np.diff(rhythm.grid.times)
    first = max(0, int(np.ceil(rhythm.origin)))
    last = int(np.floor(float(rhythm.grid.to_beats(last_onset))))
    span = periods[first:last]
    if len(span) < cfg.rit_min_beats:
        return None
    base = float(np.median(span))
    if span[-1] < base * (1.0 + cfg.rit_slowing):
        return None
    k = len(span) - 1
    while k > 0 and span[k - 1] > base * (1.0 + cfg.rit_onset):
        k -= 1
    at = _beats_to_ql(first + k, rhythm)
    return at if at >= 0 else None


def _beats_to_ql(x: float, rhythm: Rhythm) -> Fraction:
    """A position on the rhythm's beat grid (counted beats) in quarter lengths from the
    score's start."""
    return Fraction(x - rhythm.origin).limit_denominator(QL_DENOMINATOR) * rhythm.meter.beat_ql


def _to_ql(t: float, rhythm: Rhythm) -> Fraction:
    """A time (s) in quarter lengths from the score's start (never before it)."""
    return max(Fraction(0), _beats_to_ql(float(rhythm.grid.to_beats(t)), rhythm))


def read_sounding(notes: list[Note], cfg: ScoreConfig
                  ) -> tuple[list[Note], list[Note], list[int]]:
    """Notes that ring as long as they sound -> (notes with written lengths for the score,
    notes for the meter, staff per note); see `analyze`. Apart so the meter scorer can be
    fitted on what the pipeline's meter sees in this mode (`meter_training`)."""
    meter_notes = written_lengths(notes, cfg)
    split_on, part = meter_notes, part_writing(meter_notes, cfg)
    if cfg.sounding_part_region and not part:
        wide = written_lengths(notes, replace(cfg, sounding_region=cfg.sounding_part_region))
        if part_writing(wide, cfg):
            split_on, part = wide, True
    if cfg.sounding_repeat_gap and not part:
        split_on = written_lengths(notes, cfg, repeats=True)
    staves = split_hands(split_on, cfg)
    return (written_lengths(notes, cfg, staves, chords=not part),
            held_basses(notes, meter_notes, staves, cfg), staves)


def analyze(notes: Iterable[Any], *, pedals: Iterable[Any] | None = None,
            title: str | None = None, composer: str | None = None,
            tempo: float | None = None, time_signature: str | None = None,
            cfg: ScoreConfig | None = None, durations: str = "played"
            ) -> tuple[stream.Score, ScoreInfo]:
    """Build the score and describe it. See `harmonynet_jax.score.write`.

    durations: "played" when offsets are key releases (MIDI files, the token decoder; the
    pedal comes as spans), "sounding" when they are how long notes ring, pedal included (the
    frame decoder): written lengths are then estimated first (`score.sounding`): once by
    register for the meter and the hand split (the meter's notes then keep the lower staff's
    basses under chords ringing, `held_basses`), then within each staff for the score. Part
    writing missed on the register cut is looked for on a wider one (`sounding_part_region`:
    a quartet's leaps), and then split by voice from that cut; only piano writing releases
    accompaniment chords and octave doublings in the staff pass, and its hands are split on
    a cut where repeated notes of alternating two-note chords are voices of their own
    (`sounding._repeated`).
    """
    cfg = cfg or ScoreConfig()
    if tempo is not None and not 0 < tempo < float("inf"):
        raise ValueError(f"tempo must be a positive number of quarter notes per minute, "
                         f"got {tempo}")
    if durations not in DURATIONS:
        raise ValueError(f"durations must be one of {DURATIONS}, got {durations!r}")
    notes_n = normalize_notes(notes, cfg.min_note_seconds)
    staves = None
    meter_notes = notes_n
    if durations == "sounding":
        notes_n, meter_notes, staves = read_sounding(notes_n, cfg)
    pedal_spans = normalize_pedals(pedals)
    if not notes_n:
        meter = parse_time_signature(time_signature or "4/4")
        rhythm = Rhythm(regular_grid(0.0, 1.0, 60.0 / (tempo or DEFAULT_BPM)), meter, 0.0,
                        Fraction(0))
        q = Quantized([], {1: {}, 2: {}})
        k = m21key.Key("C")
    else:
        onsets = OnsetAnalysis.of(meter_notes, cfg)
        rhythm = choose_rhythm(meter_notes, onsets, track_grids(meter_notes, onsets, tempo, cfg),
                               cfg, time_signature,
                               tempo is not None)
        q = quantize(notes_n, staves or split_hands(notes_n, cfg), rhythm, cfg)
        k = estimate_key([(n.start, n.pitch, n.end - n.start) for n in q.notes], cfg)
    end = max((n.end for n in q.notes), default=Fraction(0))
    lay = make_layout(rhythm.meter, rhythm.anacrusis, end)
    pedal_ql = [(_to_ql(p.onset, rhythm), _to_ql(p.offset, rhythm)) for p in pedal_spans]
    bpm = _bpm(rhythm, tempo, cfg) if notes_n else float(tempo or DEFAULT_BPM)
    rit = (ritardando_start(rhythm, max(n.onset for n in notes_n), cfg)
           if notes_n and cfg.ritardando else None)
    score = build_stream(q, lay, k, bpm=bpm, pedals=pedal_ql, title=title, composer=composer,
                         cfg=cfg, ritardando=rit)
    staff_counts = (sum(n.staff == 1 for n in q.notes), sum(n.staff == 2 for n in q.notes))
    info = ScoreInfo(
        tempo_bpm=float(bpm * float(rhythm.meter.beat_ql)),
        time_signature=rhythm.meter.ratio,
        key=k.name,
        bars=lay.n_bars,
        anacrusis=float(rhythm.anacrusis),
        notes=len(q.notes),
        notes_per_staff=staff_counts,
    )
    return score, info
