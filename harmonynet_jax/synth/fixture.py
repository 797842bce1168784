"""Regenerate the tiny MAESTRO-layout fixture in tests/data/fixture_maestro.

Six short pieces (4-8 s of audio) that exercise what a loader must handle: chords, varied
velocities, a key re-struck without a gap, sustain pedal (CC64), a tempo change in the MIDI,
and mixed audio files (.flac/.wav/.mp3; 44.1 kHz stereo and 16 kHz mono).

    PYTHONPATH=. python -m harmonynet_jax.synth.fixture [--out tests/data/fixture_maestro]
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import SynthConfig
from .fluid import FluidSettings
from .layout import Entry, write_index
from .performance import Note, PedalEvent, Performance, sanitize
from .render import OutputSpec, render_to_files
from .soundfonts import Preset, piano_presets

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "fixture_maestro"
TAIL_SECONDS = 0.8  # shorter than the dataset's tail: keeps the committed fixture small
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 11)  # harmonic minor, so V is major


@dataclass(frozen=True)
class FixturePiece:
    stem: str
    split: str
    year: int
    title: str
    tonic: int  # MIDI pitch of the tonic in octave 4
    minor: bool
    tempos: tuple[tuple[float, float], ...]  # (beat, bpm)
    degrees: tuple[int, ...]  # scale degree (0-based) of each bar's chord
    soundfont: str  # substring of the SoundFont file name
    program: int
    audio_ext: str
    sample_rate: int
    channels: int


PIECES = (
    FixturePiece("fixture_01", "train", 2018, "Study in C major", 60, False,
                 ((0, 96), (2, 80)), (0,), "FluidR3_GM", 0, "flac", 44100, 2),
    FixturePiece("fixture_02", "train", 2018, "Study in A minor", 57, True,
                 ((0, 132), (4, 110)), (0, 4), "TimGM6mb", 0, "wav", 16000, 1),
    FixturePiece("fixture_03", "train", 2017, "Study in F major", 65, False,
                 ((0, 112), (4, 90)), (0, 4), "MuseScore_General_Lite", 1, "mp3", 44100, 2),
    FixturePiece("fixture_04", "train", 2017, "Study in D major", 62, False,
                 ((0, 140), (8, 104)), (0, 3, 4), "FluidR3Mono", 0, "flac", 16000, 1),
    FixturePiece("fixture_05", "validation", 2019, "Study in E minor", 64, True,
                 ((0, 92), (2, 72)), (4,), "FluidR3_GM", 1, "mp3", 16000, 1),
    FixturePiece("fixture_06", "test", 2019, "Study in G major", 55, False,
                 ((0, 110), (2, 98)), (0,), "TimGM6mb", 2, "wav", 44100, 2),
)


def beat_times(tempos: tuple[tuple[float, float], ...]):
    """Beats -> seconds for a piecewise-constant tempo given in beats."""
    def seconds(beat: float) -> float:
        t, prev_beat, prev_bpm = 0.0, 0.0, tempos[0][1]
        for b, bpm in tempos[1:]:
            if beat <= b:
                break
            t += (b - prev_beat) * 60.0 / prev_bpm
            prev_beat, prev_bpm = b, bpm
        return t + (beat - prev_beat) * 60.0 / prev_bpm
    return seconds


def compose(piece: FixturePiece, rng: np.random.Generator) -> Performance:
    """Bass + repeated left-hand chord (a re-strike) + eighth-note melody, pedal per bar."""
    scale = MINOR if piece.minor else MAJOR
    sec = beat_times(piece.tempos)

    def pitch(degree: int, octave_shift: int) -> int:
        return piece.tonic + 12 * (octave_shift + degree // 7) + scale[degree % 7]

    notes: list[tuple[float, float, int, int]] = []  # beat, length, pitch, velocity
    pedal: list[tuple[float, int]] = []
    n_bars = len(piece.degrees)
    for bar, deg in enumerate(piece.degrees):
        b0 = 4.0 * bar
        swell = 1.0 + 0.25 * bar / max(1, n_bars - 1)
        notes.append((b0, 1.9, pitch(deg, -2), int(58 * swell)))
        chord = [pitch(deg + k, -1) for k in (0, 2, 4)]
        for beat in (1.0, 2.0, 3.0):  # same keys struck again each beat
            for p in chord:
                notes.append((b0 + beat, 0.8, p, int(rng.integers(36, 50) * swell)))
        melody = [deg + 7 + int(step) for step in rng.choice([0, 2, 4, 1, -1], size=8)]
        melody[3] = melody[2]  # a melodic repeated note as well
        for i, d in enumerate(melody):
            arch = 1.0 + 0.3 * np.sin(np.pi * i / 7)
            notes.append((b0 + 0.5 * i, 0.45, pitch(d, 0), int(62 * arch * swell)))
        pedal += [(b0 + 0.08, 0), (b0 + 0.3, 100)] if bar else [(b0 + 0.3, 100)]
    end = 4.0 * n_bars
    final = [pitch(0, -3), pitch(0, -2), pitch(4, -2), pitch(0, -1), pitch(2, 0), pitch(4, 0),
             pitch(0, 1)]
    for p in final:
        notes.append((end, 1.6, p, int(rng.integers(80, 105))))
    pedal += [(end + 0.05, 0), (end + 0.25, 110), (end + 1.5, 0)]
    perf = Performance(
        notes=[Note(p, v, sec(b), sec(b + length)) for b, length, p, v in notes],
        pedal=[PedalEvent(sec(b), v) for b, v in pedal],
        tempos=[(sec(b), float(bpm)) for b, bpm in piece.tempos],
    )
    return sanitize(perf)


def pick_preset(presets: tuple[Preset, ...], soundfont: str, program: int) -> Preset:
    """The requested preset, or the closest installed one (fixtures must build anywhere)."""
    for p in presets:
        if soundfont in Path(p.soundfont).name and p.program == program:
            return p
    same_program = [p for p in presets if p.program == program]
    return (same_program or list(presets))[0]


def build_fixture(out: Path, cfg: SynthConfig | None = None) -> list[Entry]:
    cfg = cfg or SynthConfig()
    presets = piano_presets(cfg.soundfont_dirs, cfg.piano_programs)
    if not presets:
        raise RuntimeError("no piano SoundFont found: install fluid-soundfont-gm")
    if out.exists():
        shutil.rmtree(out)
    entries = []
    for i, piece in enumerate(PIECES):
        rng = np.random.default_rng(1000 + i)
        perf = compose(piece, rng)
        midi_rel = f"{piece.year}/{piece.stem}.midi"
        audio_rel = f"{piece.year}/{piece.stem}.{piece.audio_ext}"
        spec = OutputSpec(out / audio_rel, out / midi_rel, piece.sample_rate, piece.channels,
                          kbps=64)
        settings = FluidSettings(sample_rate=44100, gain=0.5, polyphony=256,
                                 extra={"synth.dynamic-sample-loading": "1"})
        duration = render_to_files(perf, pick_preset(presets, piece.soundfont, piece.program),
                                   settings, spec, tail_seconds=TAIL_SECONDS,
                                   ticks_per_beat=cfg.ticks_per_beat)
        entries.append(Entry("Synthetic Fixture", piece.title, piece.split, piece.year,
                             midi_rel, audio_rel, round(duration, 6)))
    write_index(out, entries)
    (out / "README.md").write_text(README)
    return entries


README = """# fixture_maestro

A tiny MAESTRO-v3-layout dataset for tests: six pieces (4-8 s each) rendered from MIDI with
FluidSynth and the Debian piano SoundFonts. Splits: train 4, validation 1, test 1.

- MIDI (`*.midi`, 480 ticks/beat): chords, varied velocities, keys re-struck on consecutive
  beats, sustain pedal (CC64) per bar, and a tempo change (two `set_tempo` events).
- Audio: `.flac`, `.wav` and `.mp3`, at 44.1 kHz stereo and 16 kHz mono. The MIDI file is the
  file FluidSynth rendered, so note times align with the audio exactly.
- `maestro-v3.0.0.csv` and `maestro-v3.0.0.json` hold the same rows (MAESTRO columns);
  `duration` is the decoded audio length in seconds.

Regenerate (needs `fluidsynth`, `fluid-soundfont-gm`, `timgm6mb-soundfont`,
`fluidr3mono-gm-soundfont`, `musescore-general-soundfont-small`):

    PYTHONPATH=. python -m harmonynet_jax.synth.fixture --out tests/data/fixture_maestro
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for e in build_fixture(args.out):
        print(f"{e.split:10s} {e.audio_filename:28s} {e.duration:6.2f} s  {e.canonical_title}")


if __name__ == "__main__":
    main()
