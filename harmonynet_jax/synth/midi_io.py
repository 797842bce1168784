"""Performance <-> Standard MIDI File (mido), with a tempo map and sustain pedal.

The file written here is the file FluidSynth renders, so labels and audio align exactly. The
layout follows MAESTRO: format 1, a tempo/meta track and one piano track, 480 ticks per beat.
"""

from __future__ import annotations

import bisect
from pathlib import Path

import mido

from .performance import Note, PedalEvent, Performance

SUSTAIN_CC = 64


class TempoMap:
    """Seconds <-> ticks for a piecewise-constant tempo map."""

    def __init__(self, tempos: list[tuple[float, float]], ticks_per_beat: int) -> None:
        if not tempos or tempos[0][0] != 0.0:
            raise ValueError("the tempo map must start at 0.0 s")
        self.ticks_per_beat = ticks_per_beat
        self.times: list[float] = []
        self.ticks: list[int] = []
        self.micros: list[int] = []  # microseconds per beat
        tick = 0
        for i, (time, bpm) in enumerate(tempos):
            micro = int(round(60e6 / bpm))
            if i:
                tick = self.ticks[-1] + round(
                    (time - self.times[-1]) * 1e6 / self.micros[-1] * ticks_per_beat)
                time = self.seconds(tick)  # snap the change onto the tick grid
            self.times.append(time)
            self.ticks.append(tick)
            self.micros.append(micro)

    def tick(self, seconds: float) -> int:
        i = max(0, bisect.bisect_right(self.times, seconds) - 1)
        return self.ticks[i] + round(
            (seconds - self.times[i]) * 1e6 / self.micros[i] * self.ticks_per_beat)

    def seconds(self, tick: int) -> float:
        i = max(0, bisect.bisect_right(self.ticks, tick) - 1)
        return self.times[i] + (tick - self.ticks[i]) * self.micros[i] / (
            1e6 * self.ticks_per_beat)


def write_midi(perf: Performance, path: Path, *, program: int = 0, ticks_per_beat: int = 480,
               end_seconds: float | None = None) -> None:
    """Write `perf`; the end-of-track sits at `end_seconds` so renderers keep the release tail."""
    tmap = TempoMap(perf.tempos, ticks_per_beat)
    meta: list[tuple[int, int, mido.MetaMessage]] = [
        (t, 0, mido.MetaMessage("set_tempo", tempo=m, time=0))
        for t, m in zip(tmap.ticks, tmap.micros, strict=True)
    ]
    meta.insert(0, (0, -1, mido.MetaMessage("time_signature", numerator=4, denominator=4)))
    events: list[tuple[int, int, mido.Message]] = [
        (0, -2, mido.Message("program_change", channel=0, program=program)),
    ]
    # Order at equal ticks: pedal, note-offs, then note-ons, so a re-struck key is released
    # before it sounds again.
    for p in perf.pedal:
        events.append((tmap.tick(p.time), -1, mido.Message(
            "control_change", channel=0, control=SUSTAIN_CC, value=p.value)))
    for n in perf.notes:
        on, off = tmap.tick(n.onset), tmap.tick(n.offset)
        off = max(off, on + 1)
        events.append((on, 1, mido.Message("note_on", channel=0, note=n.pitch,
                                           velocity=n.velocity)))
        events.append((off, 0, mido.Message("note_on", channel=0, note=n.pitch, velocity=0)))
    end = tmap.tick(end_seconds if end_seconds is not None else perf.end)
    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    for evs in (meta, events):
        evs.sort(key=lambda e: (e[0], e[1]))
        track = mido.MidiTrack()
        now = 0
        for tick, _, msg in evs:
            track.append(msg.copy(time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
        mid.tracks.append(track)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(str(path))


def read_midi(path: Path) -> Performance:
    """Read notes (key-press durations), CC64 changes and the tempo map back from a file."""
    mid = mido.MidiFile(str(path))
    tempos: list[tuple[float, float]] = []
    notes: list[Note] = []
    pedal: list[PedalEvent] = []
    open_notes: dict[int, tuple[float, int]] = {}
    now = 0.0
    for msg in mid:  # merged tracks, delta times already in seconds
        now += msg.time
        if msg.type == "set_tempo":
            bpm = mido.tempo2bpm(msg.tempo)
            if tempos and abs(tempos[-1][0] - now) < 1e-9:
                tempos[-1] = (now, bpm)
            else:
                tempos.append((now, bpm))
        elif msg.type == "note_on" and msg.velocity > 0:
            if msg.note in open_notes:  # re-strike without release: close the old one
                onset, vel = open_notes.pop(msg.note)
                notes.append(Note(msg.note, vel, onset, now))
            open_notes[msg.note] = (now, msg.velocity)
        elif msg.type in ("note_on", "note_off") and msg.note in open_notes:
            onset, vel = open_notes.pop(msg.note)
            notes.append(Note(msg.note, vel, onset, now))
        elif msg.type == "control_change" and msg.control == SUSTAIN_CC:
            pedal.append(PedalEvent(now, msg.value))
    for pitch, (onset, vel) in open_notes.items():
        notes.append(Note(pitch, vel, onset, now))
    notes.sort(key=lambda n: (n.onset, n.pitch))
    return Performance(notes=notes, pedal=pedal, tempos=tempos or [(0.0, 120.0)])
