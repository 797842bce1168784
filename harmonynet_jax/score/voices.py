"""Voices within a staff: notes that start together and end together become one chord;
a note that is held while others move goes to another voice, so every written duration is
the quantised one (no chord-wide truncation, no tie forests).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from harmonynet_jax.score.quantize import QNote


@dataclass
class Item:
    """A chord (one or more pitches) or, with no pitches, a rest."""

    start: Fraction
    end: Fraction
    pitches: list[int] = field(default_factory=list)
    velocity: int = 64


@dataclass
class Voice:
    items: list[Item] = field(default_factory=list)

    @property
    def end(self) -> Fraction:
        return self.items[-1].end if self.items else Fraction(0)

    @property
    def last_pitch(self) -> float:
        for it in reversed(self.items):
            if it.pitches:
                return sum(it.pitches) / len(it.pitches)
        return float("nan")


def assign_voices(notes: Sequence[QNote], max_voices: int) -> list[Voice]:
    """Greedy voice allocation: higher chords to lower-numbered voices, pitch-closest wins."""
    chords: dict[tuple[Fraction, Fraction], list[QNote]] = defaultdict(list)
    for n in notes:
        chords[(n.start, n.end)].append(n)
    items = [Item(s, e, sorted({n.pitch for n in ns}), max(n.velocity for n in ns))
             for (s, e), ns in chords.items()]
    items.sort(key=lambda it: (it.start, -max(it.pitches)))
    voices: list[Voice] = []
    for it in items:
        free = [v for v in voices if v.end <= it.start]
        if not free and len(voices) < max_voices:
            voices.append(Voice())
            free = [voices[-1]]
        if not free:  # too many rhythms at once: cut the voice that ends first
            v = min(voices, key=lambda v: v.end)
            v.items[-1].end = it.start
            if v.items[-1].end <= v.items[-1].start:
                v.items.pop()
            free = [v]
        mean = sum(it.pitches) / len(it.pitches)
        free.sort(key=lambda v: (abs(v.last_pitch - mean) if v.items else 0.0,
                                 voices.index(v)))
        free[0].items.append(it)
    # Order voices top to bottom so voice 1 is the highest (stems up).
    voices.sort(key=lambda v: -sum(sum(i.pitches) / len(i.pitches) for i in v.items)
                / max(1, len(v.items)))
    return voices
