"""Render a MIDI file with the FluidSynth command-line player (fast, file-rendering mode).

A subprocess per item keeps rendering crash-isolated and lets several run on separate cores.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from .soundfonts import Preset


class FluidSynthError(RuntimeError):
    pass


@dataclass(frozen=True)
class FluidSettings:
    """One rendering's synthesiser settings (built-in reverb and chorus are optional colour)."""

    sample_rate: int = 44100
    gain: float = 0.4
    polyphony: int = 256
    reverb: dict[str, float] | None = None  # synth.reverb.* values; None = off
    chorus: dict[str, float] | None = None  # synth.chorus.* values; None = off
    extra: dict[str, str] = field(default_factory=dict)

    def options(self) -> list[str]:
        opts = {
            "synth.sample-rate": str(self.sample_rate),
            "synth.gain": f"{self.gain:.4f}",
            "synth.polyphony": str(self.polyphony),
            "synth.reverb.active": "1" if self.reverb else "0",
            "synth.chorus.active": "1" if self.chorus else "0",
            "synth.cpu-cores": "1",
        }
        for group, values in (("reverb", self.reverb), ("chorus", self.chorus)):
            for key, value in (values or {}).items():
                opts[f"synth.{group}.{key}"] = f"{value:g}"
        opts.update(self.extra)
        args: list[str] = []
        for key, value in opts.items():
            args += ["-o", f"{key}={value}"]
        return args


def fluidsynth_binary() -> str:
    path = shutil.which("fluidsynth")
    if path is None:
        raise FluidSynthError("fluidsynth not found: install the Debian package `fluidsynth`")
    return path


def render_midi(midi_path: Path, preset: Preset, settings: FluidSettings) -> np.ndarray:
    """Audio of `midi_path` as float32 (frames, 2) at settings.sample_rate.

    The MIDI file carries its own program change; the SoundFont is the preset's file.
    """
    with tempfile.TemporaryDirectory(prefix="fluid-") as tmp:
        out = Path(tmp) / "render.wav"
        cmd = [fluidsynth_binary(), "-n", "-i", "-q", "-T", "wav", "-O", "float",
               "-F", str(out), "-r", str(settings.sample_rate), *settings.options(),
               preset.soundfont, str(midi_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not out.exists():
            raise FluidSynthError(f"fluidsynth failed ({proc.returncode}): {proc.stderr[-2000:]}")
        audio, rate = sf.read(str(out), dtype="float32", always_2d=True)
    if rate != settings.sample_rate:
        raise FluidSynthError(f"fluidsynth wrote {rate} Hz, asked for {settings.sample_rate}")
    return audio
