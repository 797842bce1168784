"""Quantisation of performed notes onto the beat grid: 16ths, or per beat eighth or 16th
triplets.

Positions are snapped per beat and per staff: a beat is notated in triplets (or 16th
triplets) only when its onsets sit on thirds (sixths) and fit them clearly better than 16ths,
so a slightly uneven pair of eighths never turns into a triplet. Releases are then snapped
to the grid, and to the next onset of the same staff when the performer merely articulated
(legato fill), which is what turns a key-release duration into the written one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.events import Note
from harmonynet_jax.score.meter import Rhythm

TUPLETS = (3, 6)  # tuplet divisions of a simple beat, simplest first


@dataclass(frozen=True)
class QNote:
    """A note on the score grid, in quarter lengths from the start of the score."""

    start: Fraction
    end: Fraction
    pitch: int
    velocity: int
    staff: int  # 1 = upper (right hand), 2 = lower (left hand)
    release: float  # unquantised release, quarter lengths (for the legato fill)


@dataclass(frozen=True)
class Quantized:
    """All notes on the grid plus, per staff, the beats written in tuplets: beat start ->
    3 (eighth triplets) or 6 (16th triplets)."""

    notes: list[QNote]
    triplet_beats: dict[int, dict[Fraction, int]]


def _snap(frac: np.ndarray, steps: int) -> np.ndarray:
    return np.round(frac * steps) / steps


def _grid_error(frac: np.ndarray, division: int) -> np.ndarray:
    """Distance (beats) of each position to the nearest point of `division` per beat."""
    return np.abs(frac * division - np.round(frac * division)) / division


def beat_division(frac: np.ndarray, period: float, steps: int, cfg: ScoreConfig) -> int:
    """How one beat is divided: `steps` (16ths), 3 (eighth triplets) or 6 (16th triplets).

    A tuplet division is taken only when some onset needs it (a third of the beat; for 16th
    triplets a sixth that is no third and no half, in a complete group of three sixths), it
    fits every onset of the beat within timing noise, and it fits clearly better
    (`triplet_margin_s`) than the simpler division chosen so far: a slightly uneven pair of
    eighths never turns into a triplet, and a beat of 16ths that the beat tracker squeezed
    towards sixths (positions 0, 1, 3, 4 of six) stays in 16ths.
    """
    best = steps
    if frac.size == 0:
        return best
    for division in TUPLETS:
        k = np.round(frac * division).astype(int) % division
        if division == 3:
            needs = k % 3 != 0
        else:
            present = set(k.tolist())
            complete = np.array([{3 * (j // 3), 3 * (j // 3) + 1, 3 * (j // 3) + 2} <= present
                                 for j in k])
            needs = (k % 2 == 1) & (k % 3 != 0) & complete
        err = _grid_error(frac, division)
        gain = (_grid_error(frac, best).sum() - err.sum()) * period
        if (needs.any() and gain > cfg.triplet_margin_s
                and err.max() * period < 2 * cfg.timing_sigma_s):
            best = division
    return best


def quantize(notes: Sequence[Note], staves: Sequence[int], rhythm: Rhythm,
             cfg: ScoreConfig) -> Quantized:
    """Snap onsets and releases (per staff, per beat), then apply the legato fill."""
    meter = rhythm.meter
    steps = 6 if meter.compound else max(2, int(meter.beat_ql * cfg.grid_per_beat))
    grid = rhythm.grid
    periods = grid.periods()
    out: list[QNote] = []
    triplets: dict[int, dict[Fraction, int]] = {}
    for staff in (1, 2):
        idx = [i for i, s in enumerate(staves) if s == staff]
        if not idx:
            triplets[staff] = {}
            continue
        on = grid.to_beats(np.array([notes[i].onset for i in idx]))
        off = grid.to_beats(np.array([notes[i].offset for i in idx]))
        beat = np.floor(on + 0.5 / steps).astype(int)  # the beat an onset snaps into
        division: dict[int, int] = {}  # beats written in tuplets: 3 or 6 per beat
        if not meter.compound:
            for k in np.unique(beat):
                sel = beat == k
                period = float(periods[min(max(k, 0), len(periods) - 1)])
                d = beat_division(on[sel] - k, period, steps, cfg)
                if d != steps:
                    division[int(k)] = d
        q_on = np.array([k + (_snap(np.array([x - k]), division.get(k, steps))[0])
                         for x, k in zip(on, beat, strict=True)])
        q_off = np.array([_snap_release(a, b, division, steps, cfg)
                          for a, b in zip(on, off, strict=True)])
        for j, i in enumerate(idx):
            start = _to_ql(q_on[j], rhythm)
            end = _to_ql(q_off[j], rhythm)
            step = Fraction(meter.beat_ql, division.get(int(beat[j]), steps))
            end = max(end, start + step)
            release = float((off[j] - rhythm.origin) * float(meter.beat_ql))
            out.append(QNote(start, end, notes[i].pitch, notes[i].velocity, staff, release))
        triplets[staff] = {_to_ql(float(k), rhythm): d for k, d in division.items()}
    return Quantized(legato_fill(out, cfg), triplets)


def _snap_release(on: float, off: float, division: dict[int, int], steps: int,
                  cfg: ScoreConfig) -> float:
    """Snap a release; long notes to coarser values (release timing is loose in playing).

    Key releases come before the written end (articulation), so the played length is first
    stretched by `release_stretch` (the typical written / played length). `division` holds
    the beats written in tuplets (3 or 6 per beat).
    """
    length = (off - on) * cfg.release_stretch
    off = on + length
    if length >= cfg.release_beat_from:
        return float(np.round(off))
    k = int(np.floor(off))
    grid = division.get(k, steps)
    if length >= cfg.release_half_from and k not in division:
        grid = 2
    return k + float(_snap(np.array([off - k]), grid)[0])


def _to_ql(x: float, rhythm: Rhythm) -> Fraction:
    """Grid beat coordinate -> quarter lengths from the score start."""
    beats = Fraction(float(x) - rhythm.origin).limit_denominator(48)
    return beats * rhythm.meter.beat_ql


def legato_fill(notes: list[QNote], cfg: ScoreConfig) -> list[QNote]:
    """Set each release to the nearest later onset of its staff when it is close enough.

    Close = within `legato_gap` of the inter-onset time, measured on the unquantised release,
    so both early releases (articulation) and legato overlaps end exactly at the next onset.
    Players release early far more often than they hold over, so an onset before the release
    counts `legato_early_weight` times its distance when the nearest is chosen: a detached
    quarter under a moving inner voice ends on the beat, not on the other voice's eighth.
    """
    out = []
    for staff in (1, 2):
        mine = [n for n in notes if n.staff == staff]
        onsets = np.array(sorted({float(n.start) for n in mine}))
        exact = {float(n.start): n.start for n in mine}
        for n in mine:
            later = onsets[onsets > float(n.start)]
            if later.size:
                dist = np.abs(later - n.release)
                k = int(np.argmin(np.where(later < n.release, cfg.legato_early_weight, 1.0)
                                  * dist))
                if dist[k] <= cfg.legato_gap * (later[k] - float(n.start)):
                    n = replace(n, end=exact[float(later[k])])
            out.append(n)
    out.sort(key=lambda n: (n.start, n.pitch))
    return out
