"""All configuration, as frozen dataclasses, in one place.

Values that the Rust loader also needs (sample rate, time quantum, vocabulary sizes) are not
repeated here: they come from `harmonynet_jax.tokens.VOCAB`, which reads them from Rust.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SynthConfig:
    """How `harmonynet_jax.synth` renders MAESTRO-layout training data from MIDI.

    Ranges are (low, high) and sampled per item, so one seed gives a varied but reproducible
    dataset; weights are relative. Defaults aim at breadth (soundfonts, rooms, codecs, tempi)
    rather than realism of any single recording, since the model must generalise to real pianos.
    """

    # Items and layout.
    min_seconds: float = 20.0  # item audio length, release tail included
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
    render_rates: tuple[int, ...] = (32000, 44100, 48000)  # smallest >= output is used;
    # FluidSynth starts notes on 64-sample blocks, so rendering below 32 kHz adds onset lag
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


@dataclass(frozen=True)
class ScoreConfig:
    """How `harmonynet_jax.score` turns performed notes into a readable grand-staff score.

    Times are seconds unless named otherwise; "beat" values are fractions of a beat. The
    defaults were tuned on the fidelity set in `harmonynet_jax.score.fidelity` (humanised
    music21 corpus pieces), see docs/score.md.
    """

    # Input clean-up.
    min_note_seconds: float = 0.02  # shorter (or inverted) notes are stretched to this
    chord_spread_s: float = 0.04  # onsets closer than this form one onset group (chord)
    salience_cap_s: float = 1.0  # an onset group's weight grows with note length up to this
    # Onset envelope and tempo induction.
    frame_s: float = 0.01
    envelope_sigma_s: float = 0.03
    min_period_s: float = 0.15  # shortest and longest beat period searched
    max_period_s: float = 2.0
    track_center_s: float = 0.5  # preferred period of the tracked pulse (120 BPM)
    track_sigma_octaves: float = 1.0
    tracked_pulses: int = 3  # autocorrelation peaks tracked as candidate pulses
    distinct_ratio: float = 1.2  # peaks closer than this ratio count as one pulse
    pulse_drift: float = 1.04  # a pulse's salience: its best autocorrelation within this ratio
    # Beat tracking (dynamic programming over beat time and beat period).
    track_range: tuple[float, float] = (0.6, 1.65)  # allowed periods / the global period
    override_range: tuple[float, float] = (0.88, 1.14)  # the same when `tempo` is given
    step_ratio: float = 1.15  # most a period may change from one beat to the next
    smoothness: float = 60.0  # cost of log period change between beats (squared)
    global_pull: float = 3.0  # cost of log distance to the global period (squared)
    # Strong rubato (a tempo swinging 15-20 % within a phrase) makes the smooth tracker slip
    # by part of a beat; a looser one is tracked too and kept when it puts at least
    # `slip_margin` more of the onset weight on its beats (within `on_beat_tolerance`).
    loose_smoothness: float = 30.0
    slip_margin: float = 0.05
    on_beat_tolerance: float = 0.1  # beats
    snap_fraction: float = 0.12  # beats move onto onsets closer than this fraction of a beat
    # Beat level, subdivision and meter.
    simple_center_s: float = 0.6  # preferred beat period of simple meters (100 BPM)
    compound_center_s: float = 0.75  # and of compound meters (dotted quarter, 80 BPM)
    tempo_sigma: float = 0.45  # log-normal width of those preferences
    timing_sigma_s: float = 0.035  # expected onset timing noise, for grid-fit costs
    sixteenth_cost: float = 0.25  # complexity of an onset on an odd 16th (vs 8th)
    triplet_cost: float = 0.6  # complexity of an onset on a triplet position
    duple_in_compound_cost: float = 1.0  # onsets off the compound grid
    fit_cap: float = 4.0  # an outlier onset costs at most this
    three_eight_max_beat_s: float = 0.34  # 3 beats faster than this are eighths: 3/8
    # Key: music21's profile candidates within `key_margin` of its best, rescored.
    key_margin: float = 0.1
    cadence_bonus: float = 0.1  # key correlation added when the tonic is the final bass
    opening_bonus: float = 0.05  # ... when the first bass note is the tonic or dominant
    outside_weight: float = 1.0  # ... minus this x share of time on pitches off the key
    # Quantisation.
    grid_per_beat: int = 4  # 16ths in simple meters (6 in compound ones)
    triplet_margin_s: float = 0.012  # triplets must fit better than 16ths by this much
    legato_gap: float = 0.45  # releases this close (share of the inter-onset time) are legato
    legato_early_weight: float = 2.0  # onsets before the release count this x their distance
    release_beat_from: float = 2.0  # releases of notes this long (beats) snap to beats ...
    release_half_from: float = 1.0  # ... and of notes this long to half beats
    release_stretch: float = 1.1  # written / played length of a note that is not legato
    # Sounding durations (`durations="sounding"`, `harmonynet_jax.score.sounding`): a new note
    # continues (and cuts) a still-ringing note at most this many semitones away (register).
    sounding_region: int = 7
    sounding_staff_region: int = 30  # the same within a staff, once the hands are split
    sounding_age_cost: float = 3.0  # semitones per chord struck since: the last moved moves on
    # The register pass: the top ringing note (the melody) is continued by a new note more
    # than `sounding_step` below it at this many semitones extra when a lower voice could be
    # (a melody moves by step; an accompaniment under it leaps).
    sounding_top_cost: float = 3.0
    sounding_step: int = 2
    # The hand split's register pass: a note of a dyad struck again with at most this many
    # dyads between while it rings is continued by the repetition (0: off; `_repeated`).
    sounding_repeat_gap: int = 1
    # For the meter only: a lower-staff bass note rings on to the next bass at or below it
    # while all its staff strikes meanwhile lies at least this far above (`held_basses`).
    sounding_bass_leap: int = 7
    # The staff pass (piano writing): a single new note leaping at least this far down from a
    # chord note to below the chord ends the whole chord (`sounding._released`); 0: never.
    sounding_release_leap: int = 8
    # Part writing is also looked for (`hands.part_writing`) on notes cut by this wider
    # register: a voice leaps on however far (0: only on the register cut).
    sounding_part_region: int = 24
    # Hands and voices.
    hand_span: int = 12  # semitones a hand covers comfortably (an octave)
    span_cost: float = 3.0  # per semitone beyond the span
    boundary_move_cost: float = 0.4  # per semitone the split point moves between chords
    held_note_cost: float = 0.3  # per note struck while its hand holds an earlier note
    line_step: int = 9  # semitones: a single-note line moving at most a sixth is one figure ...
    line_switch_cost: float = 1.0  # ... and costs this per change of hand inside it
    balance_cost: float = 0.5  # per note a chord's split is lopsided beyond one
    idle_hand_cost: float = 1.0  # per note beyond one of a chord left wholly to one hand
    # while the other hand played the previous chord and holds nothing now
    hand_cross_cost: float = 1.0  # a lone right-hand note crossing under the left hand's
    # repeated chord (`hands._crossing`); negative: never
    gap_cost: float = 1.0  # per octave the split gap is narrower than the widest sounding gap
    boundary_prior: float = 0.02  # per semitone the first split point lies from middle C
    lh_high: int = 72  # left-hand notes above C5 cost ...
    rh_low: int = 52  # ... and right-hand notes below E3
    range_cost: float = 0.25  # per semitone beyond those
    four_part_thin: float = 0.12  # part writing (staves by voice): at most this share of
    four_part_excess: float = 0.25  # onsets sounds under three notes, at most this over four
    max_voices: int = 3  # per staff; more simultaneous rhythms are cut
    # Notation.
    clef_to_bass: float = 57.0  # mean pitch of a treble-staff bar below this switches clef
    clef_to_treble: float = 64.0  # and of a bass-staff bar above this switches back
    dynamics: bool = True
    dynamic_levels: tuple[tuple[str, int], ...] = (
        ("pp", 0), ("p", 40), ("mp", 56), ("mf", 70), ("f", 86), ("ff", 104),
    )
    dynamic_min_bars: int = 2  # a new level must hold this long before it is marked
    ritardando: bool = True  # "rit." where the closing beats slow down:
    rit_slowing: float = 0.15  # the last beat this much longer than the median beat,
    rit_onset: float = 0.05  # marked after the last beat less than this much longer
    rit_min_beats: int = 8  # beats of music needed to judge
    tempo_round: int = 2  # metronome marks are rounded to this many BPM
    # Engraving.
    verovio_options: tuple[tuple[str, object], ...] = (
        ("pageWidth", 2100), ("pageHeight", 2970), ("scale", 40), ("footer", "none"),
        ("pageMarginLeft", 100), ("pageMarginRight", 100), ("pageMarginTop", 80),
        ("pageMarginBottom", 80), ("breaks", "auto"),
    )
    engraver_timeout_s: float = 120.0


@dataclass(frozen=True)
class FrontendConfig:
    """Log-mel front end inside the model: a fixed DFT basis applied as a strided conv.

    Frame i is centred on sample i*hop + hop/2, the middle of [i*hop, (i+1)*hop), which is the
    interval the loader's frame target i covers; a segment of S samples gives S // hop frames.
    The basis is scaled so a full-scale sinusoid has magnitude `magnitude_scale`: every power
    stays below the fp16 maximum (65504) and `log_floor` stays a normal-ish fp16 number.
    """

    n_fft: int = 1024  # even, >= hop
    hop: int = 320  # even; 20 ms at 16 kHz
    n_mels: int = 128
    f_min: float = 30.0  # just above A0 (27.5 Hz)
    f_max: float = 8000.0  # at most the Nyquist frequency
    magnitude_scale: float = 100.0  # |X| of a full-scale sinusoid (power 1e4)
    log_floor: float = 1e-4  # added to mel power before the log: 80 dB below a full-scale sine


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the encoder-decoder transcriber (presets: `ModelConfig.preset(name)`).

    Parameters are always stored in float32 (the master copy); `compute_dtype` is what the
    forward pass casts them to ("float32" or "bfloat16"); norms, softmax and logits stay fp32.
    """

    d_model: int = 192
    num_heads: int = 4
    enc_layers: int = 4
    dec_layers: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.1
    max_decode_len: int = 512  # decoder positions = longest token sequence incl. EOS
    segment_samples: int = 32_000  # audio per segment (2 s at 16 kHz); a multiple of the hop
    stem_kernel: int = 3  # width (frames) of the two conv layers of the encoder stem
    # Encoder stem: "dense" = two 1-D convs over frames with the mel bins as channels (every
    # output mixes all frequencies); "conv2d" = 2-D convs over (frame, mel bin), twice strided
    # by 2 in frequency, then a projection: local, shift-tolerant filters that find harmonic
    # patterns from far less data (the Onsets & Frames acoustic-model idea).
    stem: str = "dense"
    stem_channels: int = 16  # conv2d stem: channels of the first two 2-D convs (doubled after)
    frontend: FrontendConfig = FrontendConfig()  # frozen, so a shared default is safe
    compute_dtype: str = "float32"  # or "bfloat16"

    def __post_init__(self) -> None:
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model {self.d_model} not divisible by {self.num_heads} heads")
        if self.segment_samples % self.frontend.hop:
            raise ValueError("segment_samples must be a multiple of the front end's hop")
        if self.stem not in ("dense", "conv2d"):
            raise ValueError(f"stem must be 'dense' or 'conv2d', not {self.stem!r}")
        if self.stem == "conv2d" and self.frontend.n_mels % 4:
            raise ValueError("the conv2d stem halves the mel axis twice: n_mels % 4 must be 0")
        if self.compute_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"compute_dtype must be float32 or bfloat16, not {self.compute_dtype}")

    @property
    def frames(self) -> int:
        """Encoder frames T of one segment (= the loader's frame-target count)."""
        return self.segment_samples // self.frontend.hop

    @classmethod
    def preset(cls, name: str) -> ModelConfig:
        """tiny: tests; small: D192 enc4/dec4 (~4.8M); small-conv2d: small with the 2-D conv
        stem (-nfft2048: and a 2048-point DFT); base: D256 enc6/dec4, bf16 compute
        (base-conv2d: with the 2-D conv stem)."""
        presets = {
            "tiny": cls(
                d_model=64,
                num_heads=2,
                enc_layers=1,
                dec_layers=2,
                mlp_ratio=2,
                dropout=0.0,
                max_decode_len=64,
                segment_samples=16_000,
                frontend=FrontendConfig(n_mels=64),
            ),
            "small": cls(),
            "small-conv2d": cls(stem="conv2d"),
            # Twice the frequency resolution (7.8 Hz bins: bass semitones apart), same
            # parameter shapes as small-conv2d, so it warm-starts from it.
            "small-conv2d-nfft2048": cls(stem="conv2d", frontend=FrontendConfig(n_fft=2048)),
            "base": cls(d_model=256, enc_layers=6, dec_layers=4, compute_dtype="bfloat16"),
            "base-conv2d": cls(d_model=256, enc_layers=6, dec_layers=4, compute_dtype="bfloat16",
                               stem="conv2d"),
        }
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(presets)}")
        return presets[name]


@dataclass(frozen=True)
class TrainConfig:
    """One training run of one phase (presets: `TrainConfig.preset("cpu" | "pod" | "test")`).

    Phases (optax masks over the model's labelled subtrees): "0" pretrains the encoder with
    the frame head; "A" freezes the encoder and trains the token decoder; "B" trains both, the
    encoder side at `encoder_lr_ratio` of the rate, with the frame loss kept at
    `frame_loss_weight` so the frame decoder stays usable.
    """

    phase: str = "0"
    model: str = "small-conv2d"  # ModelConfig preset (the conv2d stem: docs/model.md A/B)
    batch_size: int = 8  # global batch (split over hosts and devices)
    steps: int = 20_000  # last step of this run (a resumed run continues up to it)
    learning_rate: float = 1e-3  # peak, after linear warm-up; cosine decay to `final_lr_ratio`
    warmup_steps: int = 500
    final_lr_ratio: float = 0.05
    encoder_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    label_smoothing: float = 0.0
    frame_loss_weight: float = 1.0
    onset_weight: float = 1.0  # extra weight of the onset BCE (onsets decide note F1)
    onset_pos_weight: float = 5.0  # weight of positive onset cells (about 1 in 1000 cells)
    max_tokens: int = 256  # token slots per segment; longer sequences are cut (and counted)
    seed: int = 0
    log_every: int = 20
    eval_every: int = 500  # 0: never validate
    eval_batches: int = 4
    checkpoint_every: int = 250
    keep_checkpoints: int = 3
    loader_threads: int = 2
    prefetch: int = 4
    fsdp: int = 1  # size of the parameter-sharding mesh axis; the rest is the data axis

    @classmethod
    def preset(cls, name: str) -> TrainConfig:
        """cpu: 2 cores here; pod: a TPU/GPU slice (global batch 256, fsdp 1 to start)."""
        presets = {
            "cpu": cls(),
            "pod": cls(
                model="base-conv2d",
                batch_size=256,
                steps=200_000,
                learning_rate=5e-4,
                warmup_steps=2_000,
                max_tokens=512,
                eval_every=2_000,
                checkpoint_every=1_000,
                loader_threads=8,
                prefetch=16,
            ),
            "test": cls(
                model="tiny",
                batch_size=4,
                steps=6,
                learning_rate=3e-3,
                warmup_steps=2,
                max_tokens=64,
                log_every=1,
                eval_every=3,
                eval_batches=1,
                checkpoint_every=2,
                keep_checkpoints=2,
                loader_threads=1,
                prefetch=2,
            ),
        }
        if name not in presets:
            raise ValueError(f"unknown training preset {name!r}; choose from {sorted(presets)}")
        return presets[name]


@dataclass(frozen=True)
class InferenceConfig:
    """How `harmonynet_jax.inference` runs a model over whole recordings, how the outputs are
    written, and how `harmonynet_jax.evaluate` scores them.

    A recording is tiled by the model's segments without gaps; `batch_size` segments go through
    the model at a time, so memory stays bounded by one chunk whatever the file length.
    """

    model_path: str = "models/harmonynet.eqx"  # the bundled model, relative to the repository
    decoder: str = "tokens"  # "tokens" (seq2seq, with pedal) or "frames" (Onsets & Frames head)
    batch_size: int = 8  # segments per model call
    canonical: bool = True  # token grammar: only the loader's canonical forms
    silence_dbfs: float = -90.0  # a recording whose peak is below this holds no notes
    decode_timeout_s: float = 3600.0  # ffmpeg decoding of one file (hours of audio are fine)
    # Frame decoder (Onsets & Frames decoding of the encoder's frame head).
    onset_threshold: float = 0.5
    frame_threshold: float = 0.5
    min_note_frames: int = 1
    # Frame decoder alone: segments overlap so each keeps only its middle, this much audio of
    # context at either side (a note cut by a segment edge is heard whole by a neighbour).
    frame_margin_s: float = 0.24  # chosen on rendered held-out pieces (docs/model.md)
    # MIDI output: 960 ticks per beat at 120 BPM is a 0.52 ms tick, finer than the 10 ms grid.
    midi_ticks_per_beat: int = 960
    midi_tempo_bpm: float = 120.0  # used unless the caller gives a tempo
    # Evaluation.
    frame_fps: int = 100  # piano-roll rate of the frame metric and of the plot
    plot_seconds: float = 30.0  # the piano-roll plot shows this much from the start


@dataclass(frozen=True)
class ExportConfig:
    """What `python -m export` writes and how strictly it checks it (docs/mobile.md).

    Every exported graph computes in float32 whatever `ModelConfig.compute_dtype` says (mobile
    runtimes have no bfloat16 path); the weight variants only change how weights are stored.
    Parity runs the TFLite decode loop against the JAX greedy decoder on short clips.
    """

    tflite_variants: tuple[str, ...] = ("fp32", "fp16", "int8")  # weight storage per file
    coreml: bool = True  # also write encode, decode_step and frame_probs .mlpackage files
    coreml_precision: str = "float32"  # Core ML compute precision: "float32" or "float16"
    saved_model: bool = True  # keep the jax2tf SavedModel the TFLite files are converted from
    parity_clips: int = 2  # fixture clips decoded by both paths (0: no parity check)
    parity_seconds: float = 3.0  # audio read from each parity clip
    # Max |probability difference| of frame_probs per TFLite weight variant: fp32 is a
    # conversion check; fp16 and int8 change the weights, so they only have to stay well
    # inside the distance that moves a note across a threshold.
    frame_tolerance: tuple[tuple[str, float], ...] = (("fp32", 1e-4), ("fp16", 2e-2),
                                                      ("int8", 1e-1))
    encode_tolerance: float = 1e-4  # max |memory_tflite - memory_jax| for the fp32 file
    num_threads: int = 2  # TFLite interpreter threads for parity runs
    canonical: bool = True  # grammar mode of both decoders (as harmonynet_jax.grammar)
    keep_unmatched: bool = False  # keep fp16/int8 files whose tokens differ from the JAX model

    def __post_init__(self) -> None:
        unknown = set(self.tflite_variants) - {"fp32", "fp16", "int8"}
        if unknown:
            raise ValueError(f"unknown TFLite variants {sorted(unknown)}; use fp32, fp16, int8")
        if self.coreml_precision not in ("float32", "float16"):
            raise ValueError(f"coreml_precision must be float32 or float16, not "
                             f"{self.coreml_precision!r}")


# Environment variables of the service: the field's own name upper-cased after
# HARMONYNET_SERVICE_ (HARMONYNET_SERVICE_PORT, ...), plus these conventional aliases.
_SERVICE_ENV_ALIASES = {
    "redis_url": ("REDIS_URL",),
    "s3_bucket": ("HARMONYNET_S3_BUCKET",),
    "s3_endpoint": ("HARMONYNET_S3_ENDPOINT",),
    "s3_prefix": ("HARMONYNET_S3_PREFIX",),
    "s3_region": ("HARMONYNET_S3_REGION",),
    "checkpoint": ("HARMONYNET_CHECKPOINT",),
}


@dataclass(frozen=True)
class ServiceConfig:
    """The web service (`python -m harmonynet_jax.service`, docs/service.md): where it listens,
    where jobs and results live, its limits, and which queue and storage it uses.

    Embedded by default (worker processes + a SQLite queue + files under `data_dir`); Celery
    with Redis when `redis_url` is set; results in an S3-compatible bucket when `s3_bucket` is.
    `ServiceConfig.from_env` reads every field from the environment; flags override that.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: str = ""  # jobs database, uploads and local results; "" = per-user cache/service
    workers: int = 1  # embedded worker processes started with the server (0: run them apart)
    checkpoint: str | None = None  # weights file or run folder; None = the bundled model
    max_upload_mb: float = 100.0  # larger uploads get 413 before they are read to the end
    max_audio_minutes: float = 30.0  # longer recordings are refused (0: no limit)
    job_timeout_s: float = 900.0  # a job running longer is stopped and marked failed
    ttl_hours: float = 24.0  # finished jobs and their files are deleted this long after
    token: str | None = None  # when set, the API wants `Authorization: Bearer <token>`
    redis_url: str | None = None  # Celery + Redis instead of the embedded queue
    s3_bucket: str | None = None  # results (and uploads) in this bucket instead of data_dir
    s3_endpoint: str | None = None  # S3-compatible endpoint, e.g. Cloudflare R2's account URL
    s3_prefix: str = "harmonynet/"  # key prefix inside the bucket
    s3_region: str | None = None  # R2 wants "auto"; None lets boto3 decide
    lease_s: float = 30.0  # a job whose worker stops renewing its lease this long is requeued
    max_attempts: int = 3  # ... at most this many runs; then it is marked failed
    cleanup_interval_s: float = 60.0  # how often expired leases and old jobs are swept
    poll_interval_s: float = 0.25  # embedded workers look for new jobs this often
    max_pending: int = 1000  # more waiting jobs than this: new uploads get 503
    decode_concurrency: int = 2  # uploads checked (decoded) at once
    decode_timeout_s: float = 120.0  # ffmpeg time allowed for checking one upload

    def __post_init__(self) -> None:
        positive = ("max_upload_mb", "job_timeout_s", "ttl_hours", "lease_s", "max_attempts",
                    "cleanup_interval_s", "poll_interval_s", "max_pending",
                    "decode_concurrency", "decode_timeout_s")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"service setting {name} must be positive, "
                                 f"got {getattr(self, name)}")
        if self.workers < 0 or self.max_audio_minutes < 0:
            raise ValueError("service settings workers and max_audio_minutes must be >= 0")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def ttl_s(self) -> float:
        return self.ttl_hours * 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object
                 ) -> ServiceConfig:
        """Defaults, then the environment, then `overrides` (flags; None means "not given").
        A malformed value raises ValueError naming the variable."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            names = (f"HARMONYNET_SERVICE_{f.name.upper()}", *_SERVICE_ENV_ALIASES.get(f.name, ()))
            for name in names:
                raw = env.get(name)
                if raw is None or raw.strip() == "":
                    continue
                kind = type(f.default) if f.default is not None else str
                try:
                    values[f.name] = kind(raw.strip())
                except ValueError:
                    raise ValueError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
                break
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
