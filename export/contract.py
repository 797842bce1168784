"""The I/O contract of the exported model: signature names, tensor names, shapes and dtypes,
and the decoder settings an app runs with them.

One source for the TFLite signatures, the Core ML feature names, the manifest an app reads
and the tests, so the targets cannot drift apart. Everything is static-shape and batch 1 (an
app transcribes one segment at a time). See docs/mobile.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from harmonynet_jax.config import InferenceConfig, ModelConfig
from harmonynet_jax.frames import FrameDecoding
from harmonynet_jax.inference import frame_margin
from harmonynet_jax.model import HarmonyNet
from harmonynet_jax.tokens import VOCAB

ENCODE = "encode"
DECODE_STEP = "decode_step"
FRAME_PROBS = "frame_probs"
SIGNATURE_NAMES = (ENCODE, DECODE_STEP, FRAME_PROBS)  # every exported signature, in file order
FRAME_OUTPUTS = ("onset", "frame", "velocity")  # the frame head's outputs an app decodes
# Core ML feature names must differ between inputs and outputs, so updated caches get a suffix
# (TFLite uses the same names for both targets).
K_CACHE, V_CACHE = "k_cache", "v_cache"
K_CACHE_OUT, V_CACHE_OUT = "k_cache_out", "v_cache_out"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy name: "float32" or "int32"
    doc: str

    def zeros(self) -> np.ndarray:
        return np.zeros(self.shape, np.dtype(self.dtype))

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "doc": self.doc}


@dataclass(frozen=True)
class Signature:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    doc: str

    def to_json(self) -> dict:
        return {
            "doc": self.doc,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
        }


@dataclass(frozen=True)
class Contract:
    """Sizes that fix every exported shape, derived from the model config."""

    segment_samples: int  # S: audio samples of one segment (16 kHz mono float32 in [-1, 1])
    frames: int  # T: encoder frames of one segment
    d_model: int  # D
    num_heads: int  # H (cache rows are H heads of D // H values, head-major)
    dec_layers: int  # N: decoder layers (the leading cache axis)
    max_decode_len: int  # L: decoder positions = cache slots = longest sequence incl. EOS
    vocab_size: int  # V
    num_steps: int  # 10 ms grid steps of one segment (bounds TIME tokens)
    num_pitches: int  # P: keys of the frame head (88, MIDI min_pitch upwards)
    hop_samples: int  # audio samples per encoder frame (S // T)
    layer_cache_shape: tuple[int, ...]  # one layer's self-attention K (or V), batch axis dropped

    @classmethod
    def from_config(cls, config: ModelConfig) -> Contract:
        return cls(
            segment_samples=config.segment_samples,
            frames=config.frames,
            d_model=config.d_model,
            num_heads=config.num_heads,
            dec_layers=config.dec_layers,
            max_decode_len=config.max_decode_len,
            vocab_size=VOCAB.size,
            num_steps=config.segment_samples // VOCAB.samples_per_step,
            num_pitches=VOCAB.num_pitches,
            hop_samples=config.frontend.hop,
            layer_cache_shape=layer_cache_shape(config),
        )

    @property
    def cache_shape(self) -> tuple[int, ...]:
        """[N, *layer_cache_shape]: the model's per-layer caches stacked (no transposes)."""
        return (self.dec_layers, *self.layer_cache_shape)

    @property
    def cache_axes(self) -> str:
        h, length, dh = self.num_heads, self.max_decode_len, self.d_model // self.num_heads
        names = {
            (h, length, dh): "[layer, head, slot, i]",
            (length, h, dh): "[layer, slot, head, i]",
        }
        return names.get(self.layer_cache_shape, f"[layer, {self.layer_cache_shape}]")

    @property
    def encode(self) -> Signature:
        s, t, d = self.segment_samples, self.frames, self.d_model
        return Signature(
            ENCODE,
            (TensorSpec("audio", (1, s), "float32", "one segment, 16 kHz mono in [-1, 1]"),),
            (TensorSpec("memory", (1, t, d), "float32", "encoder frames (20 ms each)"),),
            "Encoder: run once per segment.",
        )

    @property
    def decode_step(self) -> Signature:
        t, d, v = self.frames, self.d_model, self.vocab_size
        cache = self.cache_shape
        cache_doc = f"{self.cache_axes}; zeros before position 0; slot j = position j"
        return Signature(
            DECODE_STEP,
            (
                TensorSpec("token", (1,), "int32", "previous token (SOS at position 0)"),
                TensorSpec("memory", (1, t, d), "float32", "output of encode"),
                TensorSpec(K_CACHE, cache, "float32", "self-attention keys " + cache_doc),
                TensorSpec(V_CACHE, cache, "float32", "self-attention values " + cache_doc),
                TensorSpec("position", (1,), "int32", "position of `token` (0-based)"),
            ),
            (
                TensorSpec("logits", (1, v), "float32", "scores of the next token"),
                TensorSpec(K_CACHE_OUT, cache, "float32", "k_cache with slot `position` written"),
                TensorSpec(V_CACHE_OUT, cache, "float32", "v_cache with slot `position` written"),
            ),
            "One greedy decoder step: feed the outputs back as the next step's caches.",
        )

    @property
    def frame_probs(self) -> Signature:
        t, d, p = self.frames, self.d_model, self.num_pitches
        docs = {
            "onset": "P(a note starts in this frame), per key",
            "frame": "P(the key sounds in this frame)",
            "velocity": "velocity / 127 of a note starting here (read it at onsets)",
        }
        return Signature(
            FRAME_PROBS,
            (TensorSpec("memory", (1, t, d), "float32", "output of encode"),),
            tuple(TensorSpec(k, (1, t, p), "float32", docs[k]) for k in FRAME_OUTPUTS),
            "Frame head (sigmoid, 0..1) for the frame decoder: once per segment after encode.",
        )

    @property
    def signatures(self) -> tuple[Signature, ...]:
        return tuple(getattr(self, name) for name in SIGNATURE_NAMES)

    def signature(self, name: str) -> Signature:
        """The signature called `name` (one of SIGNATURE_NAMES)."""
        if name not in SIGNATURE_NAMES:
            raise KeyError(f"unknown signature {name!r}; the contract has {SIGNATURE_NAMES}")
        return getattr(self, name)

    def to_json(self) -> dict:
        sizes = dataclasses.asdict(self)
        sizes["layer_cache_shape"] = list(self.layer_cache_shape)
        return {
            "sizes": sizes,
            "signatures": {s.name: s.to_json() for s in self.signatures},
        }


@dataclass(frozen=True)
class Decoding:
    """Which decoder an app runs after `encode`, and its settings: the weights file may
    recommend the frame decoder (a model whose token decoder never trained), so the app must
    not hard-code one. Written to the manifest as `decoding`."""

    decoder: str  # "tokens" (encode + decode_step) or "frames" (encode + frame_probs)
    onset_threshold: float
    frame_threshold: float
    min_note_frames: int
    frame_margin_s: float  # context at each side of a segment when tiling for frames
    margin_frames: int  # frame_margin_s in encoder frames (0: consecutive segments)
    margin_samples: int  # margin_frames * hop: consecutive segments overlap by twice this
    hop_seconds: float  # one encoder frame (notes are placed at frame centres)

    @classmethod
    def of(cls, model: HarmonyNet, cfg: InferenceConfig) -> Decoding:
        """The settings of `cfg` (as `inference.tuned_config` reads a weights header)."""
        hop = model.config.frontend.hop
        margin = frame_margin(model, cfg)
        return cls(
            decoder=cfg.decoder,
            onset_threshold=float(cfg.onset_threshold),
            frame_threshold=float(cfg.frame_threshold),
            min_note_frames=int(cfg.min_note_frames),
            frame_margin_s=float(cfg.frame_margin_s),
            margin_frames=margin,
            margin_samples=margin * hop,
            hop_seconds=hop / VOCAB.sample_rate,
        )

    def inference_config(self) -> InferenceConfig:
        """The desktop transcriber's settings for the same frame decoding (parity runs it)."""
        shared = ("decoder", "onset_threshold", "frame_threshold", "min_note_frames",
                  "frame_margin_s")
        return InferenceConfig(**{name: getattr(self, name) for name in shared})

    @property
    def frames(self) -> FrameDecoding:
        return FrameDecoding(self.onset_threshold, self.frame_threshold, self.min_note_frames)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def layer_cache_shape(config: ModelConfig) -> tuple[int, ...]:
    """One layer's self-attention cache as the model lays it out (abstract evaluation only),
    so the export follows the model's layout instead of re-typing it."""

    def build():
        model = HarmonyNet(config, key=jax.random.key(0))
        memory = jnp.zeros((1, config.frames, config.d_model), jnp.float32)
        return model.init_cache(memory, precompute_cross=False).self_k[0]

    shape = jax.eval_shape(build).shape
    if shape[0] != 1:
        raise RuntimeError(f"expected a batch-1 cache, got {shape}")
    return tuple(int(d) for d in shape[1:])


def vocab_json() -> dict:
    """Every token id's name plus the grammar constants of tokens.VOCAB (what the app needs to
    apply the grammar mask and turn tokens into notes)."""
    fields = {f.name: getattr(VOCAB, f.name) for f in dataclasses.fields(VOCAB)}
    fields["bin_velocity"] = list(fields["bin_velocity"])
    fields["names"] = list(fields["names"])
    fields["max_pitch"] = VOCAB.max_pitch
    return fields
