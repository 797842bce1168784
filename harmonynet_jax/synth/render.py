"""Performance -> MIDI file + audio file, written atomically side by side.

The MIDI written here is exactly what FluidSynth plays, so the label is the performance.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .codec import decode, encode
from .fluid import FluidSettings, render_midi
from .midi_io import write_midi
from .performance import Performance
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
