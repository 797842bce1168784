"""Input normalisation: whatever the caller has (tuples or note objects) becomes `Note`s.

The transcriber, pretty_midi and mido-based code all describe notes slightly differently; the
score pipeline needs one sorted, validated form so every later stage can trust its input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MIDI_MAX = 127


@dataclass(frozen=True, order=True)
class Note:
    """A performed note: seconds, MIDI pitch and velocity."""

    onset: float
    offset: float
    pitch: int
    velocity: int = 64


@dataclass(frozen=True, order=True)
class PedalSpan:
    """A sustain-pedal press, in seconds."""

    onset: float
    offset: float


def _fields(item: Any, names: tuple[str, ...], required: int) -> tuple[Any, ...]:
    if all(hasattr(item, n) for n in names):
        return tuple(getattr(item, n) for n in names)
    if isinstance(item, (tuple, list)) and len(item) >= required:
        return tuple(item)
    raise TypeError(f"cannot read {names} from {item!r}")


def normalize_notes(notes: Iterable[Any], min_duration: float) -> list[Note]:
    """Sort notes and repair zero/negative durations (a release before the attack)."""
    out: list[Note] = []
    for item in notes:
        fields = _fields(item, ("onset", "offset", "pitch", "velocity"), 3)
        onset, offset, pitch = float(fields[0]), float(fields[1]), int(fields[2])
        velocity = int(fields[3]) if len(fields) > 3 else 64
        if not 0 <= pitch <= MIDI_MAX:
            raise ValueError(f"MIDI pitch out of range: {pitch}")
        if not (math.isfinite(onset) and math.isfinite(offset)):
            raise ValueError(f"note times must be finite seconds, got onset {onset}, "
                             f"offset {offset} (pitch {pitch})")
        if onset < 0:
            raise ValueError(f"negative onset: {onset}")
        out.append(Note(onset, max(offset, onset + min_duration), pitch, max(1, min(velocity,
                                                                                     MIDI_MAX))))
    out.sort(key=lambda n: (n.onset, n.pitch))
    return out


def normalize_pedals(pedals: Iterable[Any] | None) -> list[PedalSpan]:
    """Sorted pedal spans; spans with no length are dropped (nothing to draw)."""
    if pedals is None:
        return []
    spans = []
    for item in pedals:
        onset, offset = (float(x) for x in _fields(item, ("onset", "offset"), 2)[:2])
        if not (math.isfinite(onset) and math.isfinite(offset)):
            raise ValueError(f"pedal times must be finite seconds, got {onset}, {offset}")
        if offset > onset:
            spans.append(PedalSpan(onset, offset))
    return sorted(spans)
