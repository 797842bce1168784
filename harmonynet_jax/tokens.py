"""The token vocabulary (read from the Rust loader, never re-typed) and the decoder of tokens.

Encoding lives in Rust (`rust-loader/src/vocab.rs`) because the loader tokenizes on its worker
threads; decoding lives here because it runs on model output. The grammar is in docs/tokens.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from harmonynet_jax import _rust


class Note(NamedTuple):
    """A key press: onset and key release in seconds, MIDI pitch and velocity."""

    onset: float
    offset: float
    pitch: int
    velocity: int


class Pedal(NamedTuple):
    """A span with the sustain pedal down, in seconds."""

    onset: float
    offset: float


@dataclass(frozen=True)
class Vocab:
    pad: int
    sos: int
    eos: int
    tie_end: int
    pedal_on: int
    pedal_off: int
    time_offset: int
    num_time: int
    velocity_offset: int
    num_velocity: int
    note_offset: int
    min_pitch: int
    num_pitches: int
    size: int
    sample_rate: int
    steps_per_second: int
    samples_per_step: int
    bin_velocity: tuple[int, ...]
    names: tuple[str, ...] = field(repr=False)

    @property
    def max_pitch(self) -> int:
        return self.min_pitch + self.num_pitches - 1

    @property
    def step_seconds(self) -> float:
        return 1.0 / self.steps_per_second

    def time(self, step: int) -> int:
        return self.time_offset + step

    def velocity(self, bin_: int) -> int:
        return self.velocity_offset + bin_

    def note(self, pitch: int) -> int:
        return self.note_offset + pitch - self.min_pitch

    def name(self, token: int) -> str:
        return self.names[token] if 0 <= token < self.size else f"<{token}>"

    def token(self, name: str) -> int:
        return _NAME_TO_ID[name]


def _load_vocab() -> Vocab:
    spec = dict(_rust.vocab_spec())
    spec["bin_velocity"] = tuple(int(v) for v in spec["bin_velocity"])
    spec["names"] = tuple(spec["names"])
    return Vocab(**spec)


VOCAB = _load_vocab()
_NAME_TO_ID = {name: i for i, name in enumerate(VOCAB.names)}


def _as_note_array(notes: Iterable[Sequence[float]] | np.ndarray) -> np.ndarray:
    arr = np.asarray(list(notes) if not isinstance(notes, np.ndarray) else notes, np.float64)
    return arr.reshape(-1, 4)


def _as_pedal_array(pedals: Iterable[Sequence[float]] | np.ndarray | None) -> np.ndarray:
    if pedals is None:
        return np.zeros((0, 2), np.float64)
    arr = np.asarray(list(pedals) if not isinstance(pedals, np.ndarray) else pedals, np.float64)
    return arr.reshape(-1, 2)


def steps_for(seconds: float) -> int:
    """Whole grid steps in a segment of `seconds`; segments must fill whole steps."""
    steps = round(seconds * VOCAB.steps_per_second)
    if abs(steps / VOCAB.steps_per_second - seconds) > 1e-9 or not 0 < steps <= VOCAB.num_time:
        raise ValueError(
            f"segment of {seconds} s is not a whole number of 10 ms steps in 1..{VOCAB.num_time}"
        )
    return steps


def encode(notes, pedals=None, start: float = 0.0, steps: int = VOCAB.num_time) -> np.ndarray:
    """Tokens [L] int32 of the segment [start, start + steps * 10 ms), ending in EOS."""
    return _rust.encode(_as_note_array(notes), _as_pedal_array(pedals), float(start), int(steps))


def normalize(notes, pedals=None) -> tuple[list[Note], list[Pedal]]:
    """The canonical grid form that the tokens of a performance decode back to."""
    grid_notes, grid_pedals = _rust.normalize(_as_note_array(notes), _as_pedal_array(pedals))
    return (
        [Note(float(a), float(b), int(p), int(v)) for a, b, p, v in grid_notes],
        [Pedal(float(a), float(b)) for a, b in grid_pedals],
    )


def encode_performance(notes, pedals=None, steps: int = VOCAB.num_time) -> list[np.ndarray]:
    """Tokens of consecutive segments of `steps` steps tiling the whole performance."""
    note_arr, pedal_arr = _as_note_array(notes), _as_pedal_array(pedals)
    # Ends on the grid, as encoded: a note shorter than a step lasts one, so one that starts
    # on the last step ends after it and needs a segment of its own.
    grid_notes, grid_pedals = _rust.normalize(note_arr, pedal_arr)
    ends = [0.0, *np.asarray(grid_notes)[:, 1].tolist(), *np.asarray(grid_pedals)[:, 1].tolist()]
    end_step = round(max(ends) * VOCAB.steps_per_second)
    count = max(1, -(-end_step // steps))
    seconds = steps / VOCAB.steps_per_second
    return [_rust.encode(note_arr, pedal_arr, k * seconds, steps) for k in range(count)]


@dataclass
class SegmentEvents:
    """One decoded segment, in grid steps relative to its start.

    `notes` are (onset, offset or None if still sounding at the end, pitch, velocity) of notes
    that begin in the segment; `tied` pitches sound from an earlier segment and `tied_ends` maps
    each tied pitch to its release step (None if it sounds past the end). Pedal likewise.
    """

    tied: tuple[int, ...] = ()
    tied_pedal: bool = False
    notes: list[tuple[int, int | None, int, int]] = field(default_factory=list)
    tied_ends: dict[int, int | None] = field(default_factory=dict)
    pedals: list[tuple[int, int | None]] = field(default_factory=list)
    tied_pedal_end: int | None = None
    errors: int = 0


def decode_segment(tokens: Sequence[int] | np.ndarray) -> SegmentEvents:
    """Reads one segment's tokens; tokens that break the grammar are skipped and counted."""
    v = VOCAB
    out = SegmentEvents()
    tied: list[int] = []
    in_ties = True
    time: int | None = None
    velocity: int | None = None
    sounding: dict[int, int] = {}  # pitch -> index in out.notes, or -1 for a tied note
    pedal_open: int | None = None  # index in out.pedals, or -1 for the tied pedal
    for raw in np.asarray(tokens).tolist():
        tok = int(raw)
        if tok == v.eos or tok == v.pad:
            break
        if tok == v.sos:
            continue
        if in_ties:
            if tok == v.tie_end:
                in_ties = False
                for p in tied:
                    sounding[p] = -1
                    out.tied_ends[p] = None
                if out.tied_pedal:
                    pedal_open = -1
            elif tok == v.pedal_on and not tied and not out.tied_pedal:
                out.tied_pedal = True
            elif v.note_offset <= tok < v.size and (
                not tied or tok - v.note_offset + v.min_pitch > tied[-1]
            ):
                tied.append(tok - v.note_offset + v.min_pitch)
            else:
                out.errors += 1
            continue
        if v.time_offset <= tok < v.time_offset + v.num_time:
            step = tok - v.time_offset
            if time is not None and step <= time:
                out.errors += 1
                continue
            time = step
        elif time is None:
            out.errors += 1
        elif v.velocity_offset <= tok < v.velocity_offset + v.num_velocity:
            velocity = tok - v.velocity_offset
        elif tok == v.pedal_on:
            if pedal_open is not None:
                out.errors += 1
            else:
                out.pedals.append((time, None))
                pedal_open = len(out.pedals) - 1
        elif tok == v.pedal_off:
            if pedal_open is None:
                out.errors += 1
            elif pedal_open == -1:
                out.tied_pedal_end = time
                pedal_open = None
            else:
                out.pedals[pedal_open] = (out.pedals[pedal_open][0], time)
                pedal_open = None
        elif v.note_offset <= tok < v.size and velocity is not None:
            pitch = tok - v.note_offset + v.min_pitch
            index = sounding.get(pitch)
            if velocity == 0:
                if index is None:
                    out.errors += 1
                elif index == -1:
                    out.tied_ends[pitch] = time
                    del sounding[pitch]
                else:
                    onset, _, _, vel = out.notes[index]
                    out.notes[index] = (onset, time, pitch, vel)
                    del sounding[pitch]
            elif index is not None:
                out.errors += 1
            else:
                out.notes.append((time, None, pitch, v.bin_velocity[velocity]))
                sounding[pitch] = len(out.notes) - 1
        else:
            out.errors += 1
    out.tied = tuple(tied)
    return out


def stitch(
    segments: Sequence[SegmentEvents],
    steps: int,
    start: float = 0.0,
    orphan_velocity: int = 64,
) -> tuple[list[Note], list[Pedal]]:
    """Joins consecutive segments of `steps` steps into notes and pedal spans in seconds.

    A tied pitch continues the previous segment's sounding note; a note the next segment does
    not tie ends at the boundary; a tied pitch with nothing to continue (model error) starts at
    the segment start with `orphan_velocity`.
    """
    dt = VOCAB.step_seconds
    origin = round(start * VOCAB.steps_per_second)
    notes: list[tuple[int, int, int, int]] = []
    pedals: list[tuple[int, int]] = []
    open_notes: dict[int, tuple[int, int]] = {}  # pitch -> (onset step, velocity), absolute
    open_pedal: int | None = None
    for k, seg in enumerate(segments):
        base = origin + k * steps
        carried = {}
        for pitch, (onset, vel) in open_notes.items():
            if pitch in seg.tied:
                carried[pitch] = (onset, vel)
            else:
                notes.append((onset, base, pitch, vel))
        for pitch in seg.tied:
            onset, vel = carried.get(pitch, (base, orphan_velocity))
            end = seg.tied_ends.get(pitch)
            if end is None:
                carried[pitch] = (onset, vel)
            else:
                notes.append((onset, base + end, pitch, vel))
                carried.pop(pitch, None)
        open_notes = carried
        if open_pedal is not None and not seg.tied_pedal:
            pedals.append((open_pedal, base))
            open_pedal = None
        if seg.tied_pedal:
            on = open_pedal if open_pedal is not None else base
            if seg.tied_pedal_end is None:
                open_pedal = on
            else:
                pedals.append((on, base + seg.tied_pedal_end))
                open_pedal = None
        for onset, offset, pitch, vel in seg.notes:
            if offset is None:
                open_notes[pitch] = (base + onset, vel)
            else:
                notes.append((base + onset, base + offset, pitch, vel))
        for on, off in seg.pedals:
            if off is None:
                open_pedal = base + on
            else:
                pedals.append((base + on, base + off))
    end = origin + len(segments) * steps
    notes.extend((onset, end, pitch, vel) for pitch, (onset, vel) in open_notes.items())
    if open_pedal is not None:
        pedals.append((open_pedal, end))
    notes.sort(key=lambda n: (n[0], n[2]))
    pedals.sort()
    return (
        [Note(a * dt, b * dt, p, vel) for a, b, p, vel in notes],
        [Pedal(a * dt, b * dt) for a, b in pedals],
    )


def decode(tokens, steps: int = VOCAB.num_time) -> tuple[list[Note], list[Pedal]]:
    """Notes and pedal spans of one segment, in seconds from its start."""
    return stitch([decode_segment(tokens)], steps)


def names(tokens: Iterable[int]) -> list[str]:
    """Readable names of token ids, for debugging and the golden file."""
    return [VOCAB.name(int(t)) for t in tokens]
