"""Performance -> MIDI file + audio file, written atomically side by side.

The MIDI written here is exactly what FluidSynth plays, so the label is the performance.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .codec import decode, encode
from .fluid import FluidSettings, render_midi
from .midi_io import write_midi
from .performance import Note, PedalEvent, Performance, sanitize
from .soundfonts import Preset

PostProcess = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class OutputSpec:
    audio_path: Path  # extension picks the format: .flac, .wav, .mp3, .m4a
    midi_path: Path
    sample_rate: int
    channels: int
    kbps: int = 192  # lossy formats only


def render_audio(perf: Performance, midi_path: Path, preset: Preset, settings: FluidSettings,
                 *, tail_seconds: float, ticks_per_beat: int = 480) -> np.ndarray:
    """Write the MIDI file and return its rendering, cut to performance end + tail."""
    end = perf.end + tail_seconds
    write_midi(perf, midi_path, program=preset.program, ticks_per_beat=ticks_per_beat,
               end_seconds=end)
    audio = render_midi(midi_path, preset, settings)
    frames = int(round(end * settings.sample_rate))
    if len(audio) < frames:
        audio = np.concatenate([audio, np.zeros((frames - len(audio), audio.shape[1]), "f4")])
    return audio[:frames]


def render_notes(notes: Sequence[tuple[float, float, int, int]],
                 pedals: Sequence[tuple[float, float]], preset: Preset,
                 settings: FluidSettings | None = None, *, tail_seconds: float = 1.0,
                 lead_in_seconds: float = 0.0) -> np.ndarray:
    """Audio (float32 frames x 2 at settings.sample_rate) of plain note tuples.

    notes: (onset s, offset s, pitch, velocity), as `harmonynet_jax.score.performance.perform`
    returns them; pedals: (down s, up s) sustain spans. Lets code outside the dataset builder
    (the score benchmark's end-to-end mode) hear a performance through the same MIDI writer and
    FluidSynth call as the training data; `sanitize` makes it playable as MIDI first.
    lead_in_seconds: silence before time 0 of the notes, as a recording has before the first
    note (everything is heard that much later).
    """
    perf = sanitize(Performance(
        notes=[Note(int(p), int(v), float(on), float(off)) for on, off, p, v in notes],
        pedal=[PedalEvent(float(t), value) for down, up in pedals
               for t, value in ((down, 127), (up, 0))])).shifted(lead_in_seconds)
    with tempfile.TemporaryDirectory(prefix="render-notes-") as tmp:
        return render_audio(perf, Path(tmp) / "notes.midi", preset, settings or FluidSettings(),
                            tail_seconds=tail_seconds)


def render_to_files(perf: Performance, preset: Preset, settings: FluidSettings,
                    out: OutputSpec, *, tail_seconds: float, ticks_per_beat: int = 480,
                    post: PostProcess | None = None) -> float:
    """Render `perf` into out.midi_path / out.audio_path; returns the audio duration (s).

    Both files are built under temporary names and renamed at the end, so an interrupted run
    leaves no half-written item behind. Duration is measured by decoding the written file,
    which is what any reader (and the MAESTRO `duration` column) sees.
    """
    tag = f".tmp{os.getpid()}"
    midi_tmp = out.midi_path.with_name(f".{out.midi_path.name}{tag}")
    audio_tmp = out.audio_path.with_name(f".{out.audio_path.stem}{tag}{out.audio_path.suffix}")
    out.audio_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        audio = render_audio(perf, midi_tmp, preset, settings, tail_seconds=tail_seconds,
                             ticks_per_beat=ticks_per_beat)
        if post is not None:
            audio = post(audio, settings.sample_rate)
        encode(audio, settings.sample_rate, audio_tmp, out_rate=out.sample_rate,
               channels=out.channels, kbps=out.kbps)
        decoded, rate = decode(audio_tmp)
        os.replace(midi_tmp, out.midi_path)
        os.replace(audio_tmp, out.audio_path)
    finally:
        for p in (midi_tmp, audio_tmp):
            if p.exists():
                p.unlink()
    return len(decoded) / rate
