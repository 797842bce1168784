"""Notes and sustain pedal -> a Standard MIDI File (mido), playable and re-readable as is.

Type 1 file: a conductor track (tempo, optional time signature and title) and one piano track
with velocities and CC64. Events of one tick go note-offs, pedal up, pedal down, note-ons (the
token order), so a re-struck key or a re-pedal at one instant survives a round trip.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import mido

SUSTAIN = 64
_ORDER = {"note_off": 0, "pedal_off": 1, "pedal_on": 2, "note_on": 3}


def _clean_notes(notes: Iterable[Sequence[float]], to_tick) -> list[tuple[int, int, int, int]]:
    """Notes in ticks, at least one tick long; a note is cut where its key is struck again
    (MIDI cannot hold two notes of one key)."""
    out = []
    for onset, offset, pitch, velocity in notes:
        p, v = int(pitch), int(round(velocity))
        if not 0 <= p <= 127:
            continue
        on = to_tick(onset)
        out.append([on, max(on + 1, to_tick(offset)), p, min(127, max(1, v))])
    out.sort()
    last: dict[int, list] = {}
    for note in out:
        prev = last.get(note[2])
        if prev is not None and prev[1] > note[0]:
            prev[1] = max(prev[0] + 1, note[0])
        last[note[2]] = note
    return [tuple(n) for n in out if n[1] > n[0]]


def midi_file(
    notes: Iterable[Sequence[float]],
    pedals: Iterable[Sequence[float]] = (),
    *,
    title: str | None = None,
    tempo_bpm: float = 120.0,
    ticks_per_beat: int = 960,
    time_signature: tuple[int, int] | None = None,
    program: int = 0,
) -> mido.MidiFile:
    """The MidiFile of (onset s, offset s, pitch, velocity) notes and (on s, off s) pedal spans."""
    if tempo_bpm <= 0:
        raise ValueError(f"tempo must be positive, got {tempo_bpm}")
    tempo = mido.bpm2tempo(tempo_bpm)  # microseconds per beat
    ticks_per_second = ticks_per_beat * 1e6 / tempo

    def to_tick(seconds: float) -> int:
        return max(0, int(round(float(seconds) * ticks_per_second)))

    events: list[tuple[int, int, int, mido.Message]] = []
    for on, off, pitch, vel in _clean_notes(notes, to_tick):
        events.append((on, _ORDER["note_on"], pitch,
                       mido.Message("note_on", note=pitch, velocity=vel)))
        events.append((off, _ORDER["note_off"], pitch,
                       mido.Message("note_off", note=pitch, velocity=0)))
    for on_s, off_s in pedals:
        on, off = to_tick(on_s), to_tick(off_s)
        if off <= on:
            continue
        events.append((on, _ORDER["pedal_on"], 0,
                       mido.Message("control_change", control=SUSTAIN, value=127)))
        events.append((off, _ORDER["pedal_off"], 0,
                       mido.Message("control_change", control=SUSTAIN, value=0)))
    events.sort(key=lambda e: e[:3])

    conductor = mido.MidiTrack()
    if title:
        conductor.append(mido.MetaMessage("track_name", name=title, time=0))
    conductor.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    if time_signature is not None:
        num, den = time_signature
        conductor.append(mido.MetaMessage("time_signature", numerator=num, denominator=den,
                                          time=0))
    conductor.append(mido.MetaMessage("end_of_track", time=0))

    piano = mido.MidiTrack()
    piano.append(mido.MetaMessage("track_name", name="Piano", time=0))
    piano.append(mido.Message("program_change", program=program, time=0))
    now = 0
    for tick, _, _, msg in events:
        piano.append(msg.copy(time=tick - now))
        now = tick
    piano.append(mido.MetaMessage("end_of_track", time=0))
    return mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat, tracks=[conductor, piano])


def write_midi(path: str | os.PathLike, notes, pedals=(), **kwargs) -> Path:
    """Writes `midi_file(notes, pedals, **kwargs)` to `path` (atomically: no half files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        midi_file(notes, pedals, **kwargs).save(str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
