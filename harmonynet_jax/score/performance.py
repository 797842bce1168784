"""A small, documented performance model: a written score -> humanised note events.

Used to test the score pipeline against scores whose notation is known. Given notes in
quarter lengths it applies, with a seeded generator:
  - tempo drift: the local tempo is multiplied by 1 + drift * sin(2 pi q / drift_period + phase)
    (q in quarter notes), a slow wave of a few percent as players breathe with phrases;
  - ritardando: over the last `rit_quarters` the tempo falls linearly to (1 - rit) of itself;
  - onset jitter: every onset moves by a shared per-chord N(0, chord_jitter_s) plus its own
    N(0, note_jitter_s), so chords are slightly spread and the beat is never exact;
  - articulation: a note sounds for a share of its written length, U(legato) for most notes,
    U(detached) for a fraction `detached_share` (the release is what a MIDI file records);
  - velocity: a base level per piece, the upper staff louder, N(0, velocity_jitter) per note;
  - pedal: one legato press per bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TIME_STEP_Q = 1 / 96  # integration step of the tempo curve, quarter notes
PEDAL_MARGINS_S = (0.08, 0.03)  # pedal goes down after the barline, up before the next


@dataclass(frozen=True)
class Humanizer:
    """Parameters of the performance model (see the module docstring)."""

    bpm: float = 100.0  # quarter notes per minute at the start
    drift: float = 0.05
    drift_period_q: float = 16.0
    rit: float = 0.25
    rit_quarters: float = 6.0
    chord_jitter_s: float = 0.012
    note_jitter_s: float = 0.008
    legato: tuple[float, float] = (0.85, 1.0)
    detached: tuple[float, float] = (0.6, 0.8)
    detached_share: float = 0.15
    velocity: int = 68
    melody_boost: int = 8
    velocity_jitter: float = 6.0
    seed: int = 0


def tempo_map(length_q: float, h: Humanizer, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray]:
    """(q grid, seconds at each q): the integral of the varying beat period."""
    q = np.arange(0.0, length_q + 8.0, TIME_STEP_Q)
    phase = rng.uniform(0, 2 * np.pi)
    factor = 1.0 + h.drift * np.sin(2 * np.pi * q / h.drift_period_q + phase)
    rit_start = max(0.0, length_q - h.rit_quarters)
    slowing = np.clip((q - rit_start) / max(h.rit_quarters, 1e-9), 0.0, 1.0)
    factor = factor * (1.0 - h.rit * slowing)
    seconds_per_q = 60.0 / (h.bpm * factor)
    t = np.concatenate([[0.0], np.cumsum(seconds_per_q[:-1] * TIME_STEP_Q)])
    return q, t


def perform(notes: Sequence[tuple[float, float, int, int]], h: Humanizer,
            bar_starts_q: Sequence[float] = ()
            ) -> tuple[list[tuple[float, float, int, int]], list[tuple[float, float]]]:
    """(start q, end q, pitch, staff) -> ((onset s, offset s, pitch, velocity) sorted, pedals).

    Pedalling is legato, one press per bar: down just after each barline in `bar_starts_q`,
    up just before the next one.
    """
    rng = np.random.default_rng(h.seed)
    length = max((e for _, e, _, _ in notes), default=0.0)
    qs, ts = tempo_map(length, h, rng)
    chord_shift: dict[float, float] = {}
    out = []
    for start, end, pitch, staff in sorted(notes):
        t0 = float(np.interp(start, qs, ts))
        t1 = float(np.interp(end, qs, ts))
        shared = chord_shift.setdefault(start, float(rng.normal(0, h.chord_jitter_s)))
        onset = max(0.0, t0 + shared + float(rng.normal(0, h.note_jitter_s)))
        low, high = h.detached if rng.random() < h.detached_share else h.legato
        offset = onset + (t1 - t0) * float(rng.uniform(low, high))
        vel = h.velocity + (h.melody_boost if staff == 1 else 0) + rng.normal(0, h.velocity_jitter)
        out.append((onset, offset, pitch, int(np.clip(round(vel), 1, 127))))
    out.sort()
    pedals = []
    edges = [*bar_starts_q, length]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        t0, t1 = float(np.interp(a, qs, ts)), float(np.interp(b, qs, ts))
        if t1 - t0 > PEDAL_MARGINS_S[0] + PEDAL_MARGINS_S[1]:
            pedals.append((t0 + PEDAL_MARGINS_S[0], t1 - PEDAL_MARGINS_S[1]))
    return out, pedals
