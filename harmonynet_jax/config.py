"""All configuration, as frozen dataclasses, in one place.

Values that the Rust loader also needs (sample rate, time quantum, vocabulary sizes) are not
repeated here: they come from `harmonynet_jax.tokens.VOCAB`, which reads them from Rust.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SynthConfig:
    """How `harmonynet_jax.synth` renders MAESTRO-layout training data from MIDI.

    Ranges are (low, high) and sampled per item, so one seed gives a varied but reproducible
    dataset; weights are relative. Defaults aim at breadth (soundfonts, rooms, codecs, tempi)
    rather than realism of any single recording, since the model must generalise to real pianos.
    """

    # Items and layout.
    min_seconds: float = 20.0  # performance length (before the release tail)
    max_seconds: float = 60.0
    tail_seconds: float = 1.5  # rendered after the last note-off so releases decay in the audio
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, validation, test
    ticks_per_beat: int = 480  # as in MAESTRO's MIDI files
    years: tuple[int, ...] = (2004, 2006, 2008, 2009, 2011, 2013, 2014, 2015, 2017, 2018)
    # Music sources: music21 corpus pieces, harmonised folk tunes, generated textures.
    source_weights: tuple[float, float, float] = (0.45, 0.15, 0.40)
    transpose_semitones: int = 6  # uniform in [-n, n], then folded into the keyboard
    tempo_scale: tuple[float, float] = (0.75, 1.35)  # applied to the score's own tempo
    max_keys_per_hand: int = 6  # corpus reductions drop inner notes beyond this
    # Humanisation (performance timing and dynamics).
    tempo_wobble: tuple[float, float] = (0.01, 0.10)  # relative depth of the tempo curve
    ritardando: tuple[float, float] = (0.05, 0.35)  # slowing at phrase ends (relative)
    onset_jitter_ms: tuple[float, float] = (2.0, 14.0)  # std of per-note timing noise
    melody_lead_ms: tuple[float, float] = (0.0, 25.0)  # top voice ahead of its chord
    roll_probability: float = 0.12  # chance a chord of 3+ keys is rolled
    roll_spread_ms: tuple[float, float] = (25.0, 120.0)
    velocity_jitter: float = 6.0  # std, MIDI velocity units
    dynamic_levels: tuple[int, ...] = (12, 28, 45, 62, 78, 95, 112)  # ppp .. fff base velocity
    articulation_weights: tuple[float, float, float] = (0.45, 0.4, 0.15)  # legato, normal, stacc.
    pedal_style_weights: tuple[float, float, float, float] = (0.35, 0.2, 0.2, 0.25)
    # ^ legato per bar, legato per beat, sparse, none
    # FluidSynth.
    soundfont_dirs: tuple[str, ...] = ("/usr/share/sounds/sf2", "/usr/share/sounds/sf3")
    piano_programs: tuple[int, ...] = (0, 1, 2)  # kept only where the preset is a piano
    fluid_gain: tuple[float, float] = (0.25, 0.7)
    fluid_polyphony: tuple[int, int] = (128, 256)  # low enough to vary, high enough not to drop
    fluid_reverb_probability: float = 0.35
    fluid_chorus_probability: float = 0.15
    render_rates: tuple[int, ...] = (22050, 32000, 44100, 48000)  # smallest >= output is used
    # Effects after rendering.
    reverb_probability: float = 0.6
    reverb_rt60: tuple[float, float] = (0.15, 2.8)  # seconds: small room .. concert hall
    reverb_wet: tuple[float, float] = (0.05, 0.45)
    eq_probability: float = 0.7
    eq_gain_db: float = 7.0  # max boost/cut per band
    noise_probability: float = 0.5
    noise_snr_db: tuple[float, float] = (18.0, 60.0)
    codec_probability: float = 0.3  # MP3 or AAC round trip inside the chain
    codec_kbps: tuple[int, ...] = (48, 64, 96, 128, 192)
    peak_dbfs: tuple[float, float] = (-14.0, -0.5)  # final loudness variation
    # Output files.
    output_rates: tuple[int, ...] = (16000, 22050, 24000, 32000, 44100, 48000)
    output_rate_weights: tuple[float, ...] = (0.3, 0.1, 0.1, 0.1, 0.25, 0.15)
    stereo_probability: float = 0.5
    output_formats: tuple[str, ...] = ("flac", "wav", "mp3")
    output_format_weights: tuple[float, ...] = (0.7, 0.1, 0.2)
    mp3_output_kbps: int = 192
