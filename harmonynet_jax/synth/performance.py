"""A rendered performance: notes and sustain pedal in seconds, plus a nominal tempo map.

Times are in seconds because that is what is heard; the tempo map only decides how the MIDI
file spells those seconds in ticks (MAESTRO-style files carry one tempo, ours may change it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

LOWEST_KEY = 21  # A0
HIGHEST_KEY = 108  # C8
MIN_NOTE_SECONDS = 0.03  # shorter key presses do not sound reliably in the soundfonts


@dataclass(frozen=True)
class Note:
    pitch: int
    velocity: int
    onset: float
    offset: float


@dataclass(frozen=True)
class PedalEvent:
    """A sustain pedal (CC64) value change; >= 64 holds the dampers up."""

    time: float
    value: int


@dataclass
class Performance:
    notes: list[Note]
    pedal: list[PedalEvent] = field(default_factory=list)
    tempos: list[tuple[float, float]] = field(default_factory=lambda: [(0.0, 120.0)])
    # ^ (time in seconds, beats per minute); the first entry is at 0.0

    @property
    def end(self) -> float:
        """Last moment anything happens (note-off or pedal change)."""
        times = [n.offset for n in self.notes] + [p.time for p in self.pedal]
        return max(times, default=0.0)

    def shifted(self, seconds: float) -> Performance:
        return Performance(
            notes=[replace(n, onset=n.onset + seconds, offset=n.offset + seconds)
                   for n in self.notes],
            pedal=[replace(p, time=p.time + seconds) for p in self.pedal],
            tempos=list(self.tempos),
        )


def sanitize(perf: Performance, start: float = 0.0) -> Performance:
    """Make a performance playable as MIDI without ambiguity.

    Keys stay on the piano, velocities in 1..127, every note lasts MIN_NOTE_SECONDS, and a key
    is released before it is struck again (MIDI cannot express overlapping notes of one pitch,
    and a loader pairing on/off events would otherwise mis-pair them).
    """
    by_pitch: dict[int, list[Note]] = {}
    for n in perf.notes:
        if not LOWEST_KEY <= n.pitch <= HIGHEST_KEY:
            continue
        onset = max(start, n.onset)
        note = Note(n.pitch, int(min(127, max(1, round(n.velocity)))), onset,
                    max(n.offset, onset + MIN_NOTE_SECONDS))
        by_pitch.setdefault(n.pitch, []).append(note)
    notes: list[Note] = []
    for pitch_notes in by_pitch.values():
        pitch_notes.sort(key=lambda n: n.onset)
        kept: list[Note] = []
        for n in pitch_notes:
            if kept and n.onset - kept[-1].onset < MIN_NOTE_SECONDS * 2:
                continue  # a re-strike this fast cannot be played; keep the first
            if kept and kept[-1].offset > n.onset - 0.005:
                prev = kept[-1]
                kept[-1] = replace(prev, offset=max(prev.onset + MIN_NOTE_SECONDS,
                                                    n.onset - 0.005))
            kept.append(n)
        notes.extend(kept)
    notes.sort(key=lambda n: (n.onset, n.pitch))
    pedal = sorted((PedalEvent(max(start, p.time), int(min(127, max(0, p.value))))
                    for p in perf.pedal), key=lambda p: p.time)
    return Performance(notes=notes, pedal=pedal, tempos=list(perf.tempos))
