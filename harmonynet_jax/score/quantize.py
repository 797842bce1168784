"""Quantisation of performed notes onto the beat grid: 16ths, and triplets per whole beat.

Positions are snapped per beat and per staff: a beat is notated in triplets only when its
onsets sit on thirds and fit them clearly better than 16ths, so a slightly uneven pair of
eighths never turns into a triplet. Releases are then snapped to the grid, and to the next
onset of the same staff when the performer merely articulated (legato fill), which is what
turns a key-release duration into the written one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.events import Note
from harmonynet_jax.score.meter import Rhythm


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
    """All notes on the grid plus, per staff, the start of every beat written in triplets."""

    notes: list[QNote]
    triplet_beats: dict[int, frozenset[Fraction]]


def _snap(frac: np.ndarray, steps: int) -> np.ndarray:
    return np.round(frac * steps) / steps


def _beat_is_triplet(frac: np.ndarray, period: float, steps: int, cfg: ScoreConfig) -> bool:
    """Triplets only if some onset is on a third and thirds fit clearly better than 16ths."""
    if frac.size == 0:
        return False
    on_third = np.abs(frac * 3 - np.round(frac * 3)) / 3
    on_grid = np.abs(frac * steps - np.round(frac * steps)) / steps
    thirds = np.round(frac * 3) % 3 != 0
    if not thirds.any():
        return False
    gain = (on_grid.sum() - on_third.sum()) * period
    return bool(gain > cfg.triplet_margin_s and on_third.max() * period < 2 * cfg.timing_sigma_s)


def quantize(notes: Sequence[Note], staves: Sequence[int], rhythm: Rhythm,
             cfg: ScoreConfig) -> Quantized:
    """Snap onsets and releases (per staff, per beat), then apply the legato fill."""
    meter = rhythm.meter
    steps = 6 if meter.compound else max(2, int(meter.beat_ql * cfg.grid_per_beat))
    grid = rhythm.grid
    periods = grid.periods()
    out: list[QNote] = []
    triplets: dict[int, frozenset[Fraction]] = {}
    for staff in (1, 2):
        idx = [i for i, s in enumerate(staves) if s == staff]
        if not idx:
            triplets[staff] = frozenset()
            continue
        on = grid.to_beats(np.array([notes[i].onset for i in idx]))
        off = grid.to_beats(np.array([notes[i].offset for i in idx]))
        beat = np.floor(on + 0.5 / steps).astype(int)  # the beat an onset snaps into
        trip_beats: set[int] = set()
        if not meter.compound:
            for k in np.unique(beat):
                sel = beat == k
                period = float(periods[min(max(k, 0), len(periods) - 1)])
                if _beat_is_triplet(on[sel] - k, period, steps, cfg):
                    trip_beats.add(int(k))
        q_on = np.array([k + (_snap(np.array([x - k]), 3 if k in trip_beats else steps)[0])
                         for x, k in zip(on, beat, strict=True)])
        q_off = np.array([_snap_release(a, b, trip_beats, steps, cfg)
                          for a, b in zip(on, off, strict=True)])
        for j, i in enumerate(idx):
            start = _to_ql(q_on[j], rhythm)
            end = _to_ql(q_off[j], rhythm)
            step = Fraction(meter.beat_ql, 3 if beat[j] in trip_beats else steps)
            end = max(end, start + step)
            release = float((off[j] - rhythm.origin) * float(meter.beat_ql))
            out.append(QNote(start, end, notes[i].pitch, notes[i].velocity, staff, release))
        triplets[staff] = frozenset(_to_ql(float(k), rhythm) for k in trip_beats)
    return Quantized(legato_fill(out, cfg), triplets)


def _snap_release(on: float, off: float, trip_beats: set[int], steps: int,
                  cfg: ScoreConfig) -> float:
    """Snap a release; long notes to coarser values (release timing is loose in playing)."""
    length = off - on
    if length >= cfg.release_beat_from:
        return float(np.round(off))
    k = int(np.floor(off))
    grid = 3 if k in trip_beats else steps
    if length >= cfg.release_half_from and k not in trip_beats:
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
    """
    out = []
    for staff in (1, 2):
        mine = [n for n in notes if n.staff == staff]
        onsets = np.array(sorted({float(n.start) for n in mine}))
        exact = {float(n.start): n.start for n in mine}
        for n in mine:
            later = onsets[onsets > float(n.start)]
            if later.size:
                k = int(np.argmin(np.abs(later - n.release)))
                target = float(later[k])
                if abs(target - n.release) <= cfg.legato_gap * (target - float(n.start)):
                    n = replace(n, end=exact[target])
            out.append(n)
    out.sort(key=lambda n: (n.start, n.pitch))
    return out
