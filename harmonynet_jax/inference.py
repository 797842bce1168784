"""Whole recordings through the model: decode audio once, tile it with the model's segments
(no gaps), stream chunks of `batch_size` segments through encoder + decoder, and join.

Token decoder: segments decoded batched (grammar-constrained greedy, KV cache), each row read
into events at once, then joined across segment boundaries by their tie sections
(`tokens.stitch`). Frame decoder: the frame head's probabilities of consecutive segments laid
end to end (float16, ~95 MB per audio hour), then Onsets & Frames decoding over the whole file.
Only one chunk's encoder memory exists at a time, so memory does not grow with file length
beyond the decoded audio itself (230 MB per hour at 16 kHz f32).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from harmonynet_jax import data
from harmonynet_jax.config import InferenceConfig
from harmonynet_jax.decoding import greedy_decode
from harmonynet_jax.frames import FrameDecoding, frames_to_notes
from harmonynet_jax.model import HarmonyNet
from harmonynet_jax.tokens import VOCAB, Note, Pedal, SegmentEvents, decode_segment, stitch
from harmonynet_jax.transcription import Transcription

DECODERS = ("tokens", "frames")


class InferenceError(RuntimeError):
    """Something the user can fix: a model that is missing or unreadable, unusable audio."""


class ModelUnavailable(InferenceError):
    pass


class AudioInputError(InferenceError):
    pass


# --- the model --------------------------------------------------------------------------------


def repository_root() -> Path:
    return Path(__file__).resolve().parents[1]


def bundled_model_path(cfg: InferenceConfig | None = None) -> Path:
    """$HARMONYNET_MODEL, else `cfg.model_path` under the repository."""
    env = os.environ.get("HARMONYNET_MODEL")
    if env:
        return Path(env)
    path = Path((cfg or InferenceConfig()).model_path)
    return path if path.is_absolute() else repository_root() / path


def load_model(checkpoint: str | os.PathLike | None = None,
               cfg: InferenceConfig | None = None) -> tuple[HarmonyNet, str]:
    """(model, where it came from): a weights file or training run folder, else the bundled
    model. Raises ModelUnavailable with a plain message instead of running without weights."""
    from harmonynet_jax.weights import load_weights

    if checkpoint is None:
        path = bundled_model_path(cfg)
        if not path.exists():
            raise ModelUnavailable(
                f"no trained model is bundled yet ({path} is missing); pass a checkpoint "
                "(--checkpoint PATH: a weights file or a training run folder)")
    else:
        path = Path(checkpoint)
        if not path.exists():
            raise ModelUnavailable(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # orbax explains its restore path on every run folder
            warnings.filterwarnings("ignore", category=UserWarning, module="orbax")
            model = load_weights(path)
    except Exception as err:  # weights, orbax and JSON errors all mean "cannot use this"
        raise ModelUnavailable(f"cannot load a model from {path}: {err}") from err
    if model.config.segment_samples % VOCAB.samples_per_step:
        raise ModelUnavailable(f"{path}: segment_samples {model.config.segment_samples} is not "
                               f"a whole number of {VOCAB.samples_per_step}-sample steps")
    return model, str(path)


def tuned_config(origin: str | os.PathLike | None, cfg: InferenceConfig) -> InferenceConfig:
    """`cfg` with the settings a shipped weights file was calibrated with (its header's info:
    decoder, onset_threshold, frame_threshold, min_note_frames). A model trained only through
    phase 0 recommends the frame decoder, since its token decoder never learned."""
    from harmonynet_jax.weights import WeightsError, read_header

    if origin is None or not Path(origin).is_file():
        return cfg
    try:
        info = read_header(origin).get("info", {})
    except (OSError, ValueError, WeightsError):
        return cfg
    fields = {f.name for f in dataclasses.fields(InferenceConfig)}
    tuned = {k: v for k, v in info.items()
             if k in fields - {"model_path"} and k != "decoder"}
    if info.get("decoder") in DECODERS:
        tuned["decoder"] = info["decoder"]
    return dataclasses.replace(cfg, **tuned)


# --- audio ------------------------------------------------------------------------------------


def load_recording(path: str | os.PathLike, cfg: InferenceConfig | None = None) -> np.ndarray:
    """16 kHz mono f32 of an audio file; an empty file or stream is zero samples (not an
    error: it transcribes to nothing)."""
    cfg = cfg or InferenceConfig()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"not found: {path}")
    if path.is_dir():
        raise AudioInputError(f"{path} is a folder, not an audio file")
    if path.stat().st_size == 0:
        return np.zeros(0, np.float32)
    try:
        return data.load_audio(path, timeout=cfg.decode_timeout_s)
    except data.LoaderError as err:
        if str(err).endswith("no audio samples"):
            return np.zeros(0, np.float32)
        reason = data.decode_failure_reason(err)
        raise AudioInputError(f"cannot decode {path} as audio: {reason}") from err


def audio_from_array(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """An array [samples] or [samples, channels] at any rate -> 16 kHz mono f32, resampled and
    downmixed by the same ffmpeg decoder as files (the model never sees two resamplers)."""
    x = np.asarray(audio)
    if x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[1] > 16):
        raise AudioInputError(f"audio arrays are [samples] or [samples, channels], got {x.shape}")
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        x = (x.astype(np.float64) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    x = x.astype(np.float32)
    if x.size == 0:
        return np.zeros(0, np.float32)
    if sample_rate <= 0:
        raise AudioInputError(f"sample rate must be positive, got {sample_rate}")
    if x.ndim == 1 and sample_rate == VOCAB.sample_rate:
        return np.ascontiguousarray(x)
    from scipy.io import wavfile

    with tempfile.TemporaryDirectory(prefix="harmonynet-") as tmp:
        wav = Path(tmp) / "input.wav"
        wavfile.write(wav, int(sample_rate), x)
        return data.load_audio(wav)


# --- tiling -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """`rows` segments of audio starting at segment `first`; rows past `count` are padding."""

    first: int
    count: int
    audio: np.ndarray  # [rows, segment_samples] f32, zero past the end of the recording
    valid: np.ndarray  # [rows] samples of real audio in each row


def segment_count(num_samples: int, segment_samples: int, margin: int = 0) -> int:
    """Segments that tile `num_samples` when consecutive segments overlap by 2·`margin`
    samples (each keeps its middle, see `chunks`)."""
    if num_samples <= 0:
        return 0
    stride = segment_samples - 2 * margin
    if stride <= 0:
        raise ValueError(f"margin {margin} leaves nothing of a {segment_samples}-sample segment")
    return 1 + max(0, -(-(num_samples - segment_samples) // stride))


def chunk_rows(count: int, batch_size: int) -> int:
    """Rows per model call: `batch_size`, or for short files the next power of two (so the
    set of compiled shapes stays small)."""
    if count >= batch_size:
        return batch_size
    return min(batch_size, 1 << max(0, count - 1).bit_length())


def chunks(audio: np.ndarray, segment_samples: int, batch_size: int, margin: int = 0
           ) -> Iterator[Chunk]:
    """The recording tiled by segments `batch_size` at a time. Segment i starts at
    i·(segment - 2·margin): with a margin, each segment's first and last `margin` samples are
    context only (the model hears a note's attack and decay from both sides of a cut) and the
    joiner keeps the middles, which meet without gaps."""
    n = len(audio)
    stride = segment_samples - 2 * margin
    count = segment_count(n, segment_samples, margin)
    rows = chunk_rows(count, batch_size)
    for first in range(0, count, rows):
        k = min(rows, count - first)
        block = np.zeros((rows, segment_samples), np.float32)
        starts = (first + np.arange(rows)) * stride
        if margin == 0:  # consecutive segments: one copy
            piece = audio[first * segment_samples: (first + k) * segment_samples]
            block.reshape(-1)[: len(piece)] = piece
        else:
            for row in range(k):
                piece = audio[starts[row]: starts[row] + segment_samples]
                block[row, : len(piece)] = piece
        valid = np.clip(n - starts, 0, segment_samples)
        valid[k:] = 0
        yield Chunk(first, k, block, valid)


# --- the model over chunks --------------------------------------------------------------------


@eqx.filter_jit
def _encode(model: HarmonyNet, audio: jax.Array) -> jax.Array:
    return model.encode(audio)


@eqx.filter_jit
def _frame_probs(model: HarmonyNet, memory: jax.Array) -> dict[str, jax.Array]:
    logits = model.frame_logits(memory)
    return {k: jax.nn.sigmoid(logits[k]).astype(jnp.float16)
            for k in ("onset", "frame", "velocity")}


class TokenJoiner:
    """Collects decoded segments chunk by chunk; `finish` stitches them by their ties."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.segments: list[SegmentEvents] = []
        self.grammar_errors = 0

    def add(self, tokens: np.ndarray, count: int) -> None:
        for row in np.asarray(tokens)[:count]:
            seg = decode_segment(row)
            self.grammar_errors += seg.errors
            self.segments.append(seg)

    def finish(self, end_seconds: float) -> tuple[list[Note], list[Pedal]]:
        notes, pedals = stitch(self.segments, self.steps)
        return clip_to(notes, pedals, end_seconds)


class FrameJoiner:
    """Frame-head probabilities of a recording's segments joined into one array (float16):
    each segment contributes its frames minus `margin` at either side (but the recording's
    first and last segments keep their outer edges), so the kept parts meet end to end."""

    def __init__(self, segments: int, frames_per_segment: int, keys: int,
                 margin: int = 0) -> None:
        self.segments = segments
        self.frames_per_segment = frames_per_segment
        self.margin = margin
        self.stride = frames_per_segment - 2 * margin
        shape = (max(0, segments - 1) * self.stride + frames_per_segment, keys)
        self.probs = {k: np.zeros(shape, np.float16) for k in ("onset", "frame", "velocity")}

    def add(self, first: int, probs: dict[str, np.ndarray], count: int) -> None:
        t, m = self.frames_per_segment, self.margin
        for key, arr in self.probs.items():
            block = np.asarray(probs[key])[:count]
            if m == 0:
                arr[first * t: (first + count) * t] = block.reshape(-1, block.shape[-1])
                continue
            for row in range(count):
                i = first + row
                lo = 0 if i == 0 else m
                hi = t if i == self.segments - 1 else t - m
                arr[i * self.stride + lo: i * self.stride + hi] = block[row, lo:hi]

    def finish(self, num_frames: int, hop_seconds: float, decoding: FrameDecoding) -> list[Note]:
        p = {k: v[:num_frames] for k, v in self.probs.items()}
        return frames_to_notes(p["onset"], p["frame"], p["velocity"], hop_seconds, decoding)


def clip_to(notes: Sequence[Note], pedals: Sequence[Pedal], end: float
            ) -> tuple[list[Note], list[Pedal]]:
    """Drops what starts at or after `end` and ends the rest there at the latest."""
    return (
        [Note(n.onset, min(n.offset, end), n.pitch, n.velocity) for n in notes if n.onset < end],
        [Pedal(p.onset, min(p.offset, end)) for p in pedals if p.onset < end],
    )


@dataclass(frozen=True)
class Tiling:
    """How a recording is cut into model segments and the frame head's outputs joined back:
    the one set-up the desktop transcriber and the app reference loop (export.decode_loop)
    share. margin_frames = 0: consecutive segments (what the token decoder needs)."""

    segment_samples: int
    frames_per_segment: int
    hop: int
    margin_frames: int = 0

    @property
    def margin_samples(self) -> int:
        return self.margin_frames * self.hop

    def count(self, num_samples: int) -> int:
        return segment_count(num_samples, self.segment_samples, self.margin_samples)

    def chunks(self, audio: np.ndarray, batch_size: int) -> Iterator[Chunk]:
        return chunks(audio, self.segment_samples, batch_size, self.margin_samples)

    def frame_joiner(self, num_samples: int, keys: int = VOCAB.num_pitches) -> FrameJoiner:
        return FrameJoiner(self.count(num_samples), self.frames_per_segment, keys,
                           self.margin_frames)


def frame_count(num_samples: int, hop: int) -> int:
    """Frames of a recording: one per started hop (the frame decoder's output length)."""
    return -(-num_samples // hop)


def frame_margin(model: HarmonyNet, cfg: InferenceConfig) -> int:
    """`cfg.frame_margin_s` in encoder frames (0 when it would leave no segment middle)."""
    mc = model.config
    m = round(cfg.frame_margin_s * VOCAB.sample_rate / mc.frontend.hop)
    return m if 0 < 2 * m < mc.frames else 0


def _joiners(model: HarmonyNet, audio: np.ndarray, decoders: Sequence[str], batch_size: int,
             cfg: InferenceConfig, progress: str | None
             ) -> tuple[TokenJoiner | None, FrameJoiner | None]:
    """One encoder pass over `audio` feeding the requested decoders. The token decoder needs
    consecutive segments (its stitching reads the ties at each cut); the frame decoder alone
    uses overlapping segments with `cfg.frame_margin_s` of context at each side."""
    from tqdm import tqdm

    mc = model.config
    s = mc.segment_samples
    want_tokens = "tokens" in decoders
    tiling = Tiling(s, mc.frames, mc.frontend.hop,
                    0 if want_tokens else frame_margin(model, cfg))
    tokens = TokenJoiner(s // VOCAB.samples_per_step) if want_tokens else None
    frames = tiling.frame_joiner(len(audio)) if "frames" in decoders else None
    with tqdm(total=tiling.count(len(audio)), desc=progress, unit="seg",
              disable=progress is None, leave=False, dynamic_ncols=True) as bar:
        for chunk in tiling.chunks(audio, batch_size):
            # Encoder, token decoder and frame head are compiled separately, so any mix of
            # decoders reuses the same three programs.
            memory = _encode(model, jnp.asarray(chunk.audio))
            if tokens is not None:
                num_steps = np.maximum(1, -(-chunk.valid // VOCAB.samples_per_step))
                out = greedy_decode(model, memory, num_steps=jnp.asarray(num_steps, jnp.int32),
                                    canonical=cfg.canonical)
                tokens.add(np.asarray(out), chunk.count)
            if frames is not None:
                probs = _frame_probs(model, memory)
                frames.add(chunk.first, {k: np.asarray(v) for k, v in probs.items()},
                           chunk.count)
            del memory
            bar.update(chunk.count)
    return tokens, frames


def frame_probabilities(model: HarmonyNet, audio: np.ndarray, cfg: InferenceConfig
                        ) -> tuple[FrameJoiner, int]:
    """The frame head over a whole recording and its frame count: computed once, decoded
    with any thresholds (calibration)."""
    _, frames = _joiners(model, audio, ("frames",), cfg.batch_size, cfg, None)
    assert frames is not None
    return frames, frame_count(len(audio), model.config.frontend.hop)


def run_model(model: HarmonyNet, audio: np.ndarray, decoders: Sequence[str] = ("tokens",), *,
              batch_size: int | None = None, cfg: InferenceConfig | None = None,
              progress: str | None = None) -> dict[str, tuple[list[Note], list[Pedal]]]:
    """Notes and pedal spans of 16 kHz mono `audio` for each decoder, from one encoder pass.

    progress: a label for a tqdm bar over segments (None: no bar).
    """
    cfg = cfg or InferenceConfig()
    unknown = set(decoders) - set(DECODERS)
    if unknown or not decoders:
        raise ValueError(f"decoders must be among {DECODERS}, got {list(decoders)}")
    batch_size = batch_size or cfg.batch_size
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    n = len(audio)
    peak = float(np.max(np.abs(audio))) if n else 0.0
    if n == 0 or peak <= 10.0 ** (cfg.silence_dbfs / 20.0):
        return {d: ([], []) for d in decoders}
    tokens, frames = _joiners(model, audio, decoders, batch_size, cfg, progress)
    out: dict[str, tuple[list[Note], list[Pedal]]] = {}
    if tokens is not None:
        end = math.ceil(n / VOCAB.samples_per_step) * VOCAB.step_seconds
        out["tokens"] = tokens.finish(end)
    if frames is not None:
        hop = model.config.frontend.hop
        decoding = FrameDecoding(cfg.onset_threshold, cfg.frame_threshold, cfg.min_note_frames)
        out["frames"] = (frames.finish(frame_count(n, hop), hop / VOCAB.sample_rate, decoding), [])
    return {d: out[d] for d in decoders}


# --- the public API ---------------------------------------------------------------------------


def transcribe(
    source: str | os.PathLike | np.ndarray,
    *,
    checkpoint: str | os.PathLike | None = None,
    model: HarmonyNet | None = None,
    decoder: str | None = None,
    batch_size: int = 8,
    sample_rate: int = VOCAB.sample_rate,
    config: InferenceConfig | None = None,
    progress: bool = False,
) -> Transcription:
    """Transcribe an audio file (any format ffmpeg reads) or an array ([samples] or
    [samples, channels] at `sample_rate`).

    model: an already loaded HarmonyNet (services and tests avoid reloading); otherwise the
    `checkpoint` (weights file or training run folder), otherwise the bundled model.
    """
    cfg = config or InferenceConfig()
    if decoder is not None and decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, not {decoder!r}")
    if model is None:
        model, origin = load_model(checkpoint, cfg)
        cfg = tuned_config(origin, cfg)
        decoder = decoder or cfg.decoder
    else:
        origin = str(checkpoint) if checkpoint is not None else "in-memory model"
        decoder = decoder or cfg.decoder
    if isinstance(source, (str, os.PathLike)):
        audio, name = load_recording(source, cfg), str(source)
    else:
        audio, name = audio_from_array(source, sample_rate), None
    label = Path(name).name if (progress and name) else ("audio" if progress else None)
    notes, pedals = run_model(model, audio, (decoder,), batch_size=batch_size, cfg=cfg,
                              progress=label)[decoder]
    return Transcription(notes=notes, pedals=pedals, duration=len(audio) / VOCAB.sample_rate,
                         decoder=decoder, model=origin, source=name)
