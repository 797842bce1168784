"""Music before performance: notes in quarter-note beats, with roles for voicing and dynamics.

Every source (corpus, folk, textures) produces a `Score`; `humanize` turns it into seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

MELODY, INNER, BASS = 0, 1, 2  # voice roles: balance and melody lead depend on them


@dataclass(frozen=True)
class ScoreNote:
    beat: float  # onset, quarter notes from the start
    length: float  # quarter notes
    pitch: int
    role: int = INNER


@dataclass
class Score:
    notes: list[ScoreNote]
    bar_length: float = 4.0  # quarter notes per bar (pedal changes and accents follow bars)
    qpm: float = 100.0  # quarter notes per minute before rubato
    dynamics: list[tuple[float, int]] = field(default_factory=list)
    # ^ (beat, base velocity) from that beat on; empty = humanize chooses phrase dynamics

    @property
    def length(self) -> float:
        return max((n.beat + n.length for n in self.notes), default=0.0)

    def transposed(self, semitones: int, low: int = 21, high: int = 108) -> Score:
        """Shift by `semitones`, folding notes that leave the keyboard back by octaves."""
        notes = []
        for n in self.notes:
            p = n.pitch + semitones
            while p < low:
                p += 12
            while p > high:
                p -= 12
            notes.append(replace(n, pitch=p))
        return replace(self, notes=notes)

    def window(self, start: float, length: float) -> Score:
        """Notes starting in [start, start + length), re-based to 0 and cut at the end."""
        end = start + length
        notes = [replace(n, beat=n.beat - start, length=min(n.length, end - n.beat))
                 for n in self.notes if start <= n.beat < end]
        dyn = [(max(0.0, b - start), v) for b, v in self.dynamics if b < end]
        return replace(self, notes=notes, dynamics=dyn)

    def repeated_to(self, min_length: float) -> Score:
        """Play the score again (da capo) until it lasts `min_length` beats."""
        span = self.length
        if span <= 0:
            return self
        span = -(-span // self.bar_length) * self.bar_length  # whole bars
        notes = list(self.notes)
        dyn = list(self.dynamics)
        offset = span
        while offset < min_length:
            notes += [replace(n, beat=n.beat + offset) for n in self.notes]
            dyn += [(b + offset, v) for b, v in self.dynamics]
            offset += span
        return replace(self, notes=notes, dynamics=dyn)


def concatenate(parts: list[Score], qpm: float) -> Score:
    """Join scores end to end (each starting on a fresh bar of its own length)."""
    notes: list[ScoreNote] = []
    dyn: list[tuple[float, int]] = []
    offset = 0.0
    for part in parts:
        notes += [replace(n, beat=n.beat + offset) for n in part.notes]
        dyn += [(b + offset, v) for b, v in part.dynamics]
        offset += -(-part.length // part.bar_length) * part.bar_length
    bar = parts[0].bar_length if parts else 4.0
    return Score(notes=notes, bar_length=bar, qpm=qpm, dynamics=dyn)
