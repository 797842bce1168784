"""Parity of an exported model with the JAX path on real audio clips.

Reference: `model.encode` over all segments of a clip, then harmonynet_jax.decoding's batched
`greedy_decode` (KV cache with precomputed cross-attention, grammar in JAX) and the frame head's
sigmoid; the frame decoder's notes come from the desktop transcriber (inference.run_model).
Candidate: the app's loops in export.decode_loop (batch 1, cross-attention recomputed each
step, grammar in numpy; overlapping segments for the frame decoder). Tokens and notes must be
identical; encoder memory and frame probabilities close (FRAME_TOLERANCE per weight variant).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from export import decode_loop
from export.contract import FRAME_OUTPUTS, Decoding
from export.stablehlo import float32_model
from harmonynet_jax.config import ExportConfig, InferenceConfig
from harmonynet_jax.data import load_audio
from harmonynet_jax.decoding import greedy_decode
from harmonynet_jax.inference import run_model
from harmonynet_jax.model import HarmonyNet
from harmonynet_jax.tokens import VOCAB, Note

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / "fixture_maestro"
FRAME_TOLERANCE = dict(ExportConfig().frame_tolerance)  # per weight variant (ExportConfig)


def fixture_clips(count: int) -> list[Path]:
    """The first `count` audio files of the rendered test fixture (MAESTRO csv order)."""
    index = FIXTURE / "maestro-v3.0.0.csv"
    if not index.exists():
        raise FileNotFoundError(f"no parity clips: {index} is missing; pass --parity-audio FILE "
                                f"(or --parity-clips 0 to skip the check)")
    with open(index, newline="") as f:
        rows = list(csv.DictReader(f))
    return [FIXTURE / r["audio_filename"] for r in rows[:count]]


def load_clip(path: Path, seconds: float | None) -> np.ndarray:
    audio = np.asarray(load_audio(path), np.float32)
    return audio if seconds is None else audio[: int(seconds * VOCAB.sample_rate)]


@eqx.filter_jit
def _reference(model: HarmonyNet, batch: jnp.ndarray, num_steps: jnp.ndarray, canonical: bool):
    memory = model.encode(batch)
    logits = model.frame_logits(memory)
    probs = {k: jax.nn.sigmoid(logits[k].astype(jnp.float32)) for k in FRAME_OUTPUTS}
    return memory, greedy_decode(model, memory, num_steps=num_steps, canonical=canonical), probs


@dataclass
class Reference:
    memory: np.ndarray  # [segments, T, D]
    tokens: np.ndarray  # [segments, max_decode_len]
    probs: dict[str, np.ndarray]  # FRAME_OUTPUTS, each [segments, T, P]
    frame_notes: list[Note]  # the desktop frame decoder's notes of the whole clip
    decoding: Decoding  # the settings both frame decoders ran with


def jax_reference(
    model: HarmonyNet,
    audio: np.ndarray,
    canonical: bool = True,
    decoding: Decoding | None = None,
) -> Reference:
    model = float32_model(model)
    decoding = decoding or Decoding.of(model, InferenceConfig())
    batch, steps = decode_loop.segments(audio, model.config.segment_samples)
    memory, tokens, probs = _reference(model, jnp.asarray(batch), jnp.asarray(steps), canonical)
    cfg = decoding.inference_config()
    frame_notes, _ = run_model(model, audio, ("frames",), cfg=cfg)["frames"]
    return Reference(
        np.asarray(memory), np.asarray(tokens), {k: np.asarray(v) for k, v in probs.items()},
        frame_notes, decoding,
    )


@dataclass
class ClipParity:
    clip: str
    segments: int
    tokens: int  # emitted tokens before PAD, all segments
    encode_max_abs_diff: float
    tokens_identical: bool
    token_agreement: float  # share of positions (up to the longer EOS) with equal tokens
    notes_identical: bool
    notes: int
    frame_probs_max_abs_diff: float  # onset, frame and velocity on the encoded segments
    frame_notes_identical: bool  # the frame decoder's notes (overlapping segments)
    frame_notes: int

    def to_json(self) -> dict:
        return asdict(self)


class Candidate(decode_loop.StepModel, decode_loop.FrameModel, Protocol):
    """An exported model with every signature (TFLiteModel, JaxStepModel)."""


def compare(
    model: Candidate,
    reference: Reference,
    audio: np.ndarray,
    clip: str = "",
    canonical: bool = True,
) -> ClipParity:
    """One clip through both of the app's loops against the JAX reference."""
    got = decode_loop.transcribe(model, audio, canonical=canonical)
    memory = np.concatenate(got.memory, axis=0)
    probs = [model.frame_probs(m) for m in got.memory]
    frame_diff = max(
        float(np.abs(np.concatenate([p[k] for p in probs]) - reference.probs[k]).max())
        for k in FRAME_OUTPUTS
    )
    frame_notes = decode_loop.frame_notes(model, audio, reference.decoding)
    want_notes = decode_loop.notes_of(reference.tokens, model.contract.num_steps, len(audio))
    used = np.maximum(got.tokens != VOCAB.pad, reference.tokens != VOCAB.pad)
    return ClipParity(
        clip=clip,
        segments=len(got.memory),
        tokens=int((got.tokens != VOCAB.pad).sum()),
        encode_max_abs_diff=float(np.abs(memory - reference.memory).max()),
        tokens_identical=bool(np.array_equal(got.tokens, reference.tokens)),
        token_agreement=float((got.tokens == reference.tokens)[used].mean()) if used.any() else 1.0,
        notes_identical=(got.notes, got.pedals) == want_notes,
        notes=len(got.notes),
        frame_probs_max_abs_diff=frame_diff,
        frame_notes_identical=frame_notes == reference.frame_notes,
        frame_notes=len(frame_notes),
    )


def check_clips(
    model: HarmonyNet,
    candidates: dict[str, Candidate],
    clips: list[tuple[str, np.ndarray]],
    canonical: bool = True,
    decoding: Decoding | None = None,
) -> dict[str, list[ClipParity]]:
    """Every candidate against one JAX reference per clip (computed once)."""
    results: dict[str, list[ClipParity]] = {name: [] for name in candidates}
    for clip_name, audio in clips:
        reference = jax_reference(model, audio, canonical, decoding)
        for name, candidate in candidates.items():
            results[name].append(compare(candidate, reference, audio, clip_name, canonical))
    return results


def summary(rows: list[ClipParity], variant: str = "fp32") -> dict:
    """The clips of one variant in one record; frame probabilities against the variant's
    FRAME_TOLERANCE."""
    frame_diff = max(r.frame_probs_max_abs_diff for r in rows)
    return {
        "tokens_identical": all(r.tokens_identical for r in rows),
        "notes_identical": all(r.notes_identical for r in rows),
        "encode_max_abs_diff": max(r.encode_max_abs_diff for r in rows),
        "token_agreement": float(np.mean([r.token_agreement for r in rows])),
        "frame_probs_max_abs_diff": frame_diff,
        "frame_probs_tolerance": FRAME_TOLERANCE[variant],
        "frame_probs_within_tolerance": frame_diff <= FRAME_TOLERANCE[variant],
        "frame_notes_identical": all(r.frame_notes_identical for r in rows),
        "clips": [r.to_json() for r in rows],
    }
