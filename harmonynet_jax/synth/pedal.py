"""Sustain-pedal (CC64) performance styles, placed on the performed (rubato) bar/beat times.

Pianists change the pedal just after a new harmony sounds (legato or syncopated pedalling):
release shortly after the downbeat, press again a little later. Values ramp over a few
messages as in MAESTRO's continuous pedal data; >= 64 counts as down.
"""

from __future__ import annotations

import numpy as np

from .performance import PedalEvent

STYLES = ("bar", "beat", "sparse", "none")


def _press(t: float, rng: np.random.Generator) -> list[PedalEvent]:
    top = int(rng.integers(90, 128))
    steps = int(rng.integers(1, 4))
    span = rng.uniform(0.01, 0.05)
    return [PedalEvent(t + span * k / steps, int(top * (k + 1) / steps)) for k in range(steps)]


def _release(t: float, rng: np.random.Generator) -> list[PedalEvent]:
    start = int(rng.integers(70, 110))
    steps = int(rng.integers(1, 4))
    span = rng.uniform(0.01, 0.05)
    return [PedalEvent(t + span * k / steps, int(start * (steps - 1 - k) / steps))
            for k in range(steps)]


def pedal_events(style: str, change_times: list[float], beat_times: list[float],
                 end: float, rng: np.random.Generator) -> list[PedalEvent]:
    """Pedal events for a piece whose bars start at `change_times` (seconds).

    'bar' changes at every bar, 'beat' at every beat (every other beat when beats are fast),
    'sparse' holds the pedal through a few random one- or two-bar spans, 'none' never pedals.
    The pedal is always released by `end`.
    """
    if style == "none" or not change_times:
        return []
    if style == "beat":
        fast = len(beat_times) > 1 and np.median(np.diff(beat_times)) < 0.35
        change_times = beat_times[::2] if fast else beat_times
    events: list[PedalEvent] = []
    if style in ("bar", "beat"):
        events += _press(change_times[0] + rng.uniform(0.0, 0.08), rng)
        for t in change_times[1:]:
            if t >= end - 0.3:
                break
            up = t + rng.uniform(0.01, 0.07)  # just after the new harmony is struck
            events += _release(up, rng)
            events += _press(up + rng.uniform(0.06, 0.16), rng)
    elif style == "sparse":
        i = 0
        while i < len(change_times) - 1:
            if rng.random() < 0.3:
                span = int(rng.integers(1, 3))
                j = min(i + span, len(change_times) - 1)
                events += _press(change_times[i] + rng.uniform(0.02, 0.1), rng)
                events += _release(change_times[j] + rng.uniform(0.0, 0.08), rng)
                i = j + 1
            else:
                i += 1
    else:
        raise ValueError(f"unknown pedal style {style!r}")
    events = [e for e in events if e.time < end - 0.06]
    if events and events[-1].value >= 64:
        events += _release(end - 0.06, rng)
    return events
