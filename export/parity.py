"""Parity of an exported model with the JAX path on real audio clips.

Reference: `model.encode` over all segments of a clip, then harmonynet_jax.decoding's batched
`greedy_decode` (KV cache with precomputed cross-attention, grammar in JAX). Candidate: the
app's loop in export.decode_loop over a `StepModel` (batch 1, cross-attention recomputed each
step, grammar in numpy). Tokens and notes must be identical; encoder memory close.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from export import decode_loop
from export.stablehlo import float32_model
from harmonynet_jax.data import load_audio
from harmonynet_jax.decoding import greedy_decode
from harmonynet_jax.model import HarmonyNet
from harmonynet_jax.tokens import VOCAB

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / "fixture_maestro"


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
    return memory, greedy_decode(model, memory, num_steps=num_steps, canonical=canonical)


@dataclass
class Reference:
    memory: np.ndarray  # [segments, T, D]
    tokens: np.ndarray  # [segments, max_decode_len]


def jax_reference(model: HarmonyNet, audio: np.ndarray, canonical: bool = True) -> Reference:
    model = float32_model(model)
    batch, steps = decode_loop.segments(audio, model.config.segment_samples)
    memory, tokens = _reference(model, jnp.asarray(batch), jnp.asarray(steps), canonical)
    return Reference(np.asarray(memory), np.asarray(tokens))


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

    def to_json(self) -> dict:
        return asdict(self)


def compare(
    model: decode_loop.StepModel,
    reference: Reference,
    audio: np.ndarray,
    clip: str = "",
    canonical: bool = True,
) -> ClipParity:
    got = decode_loop.transcribe(model, audio, canonical=canonical)
    memory = np.concatenate(got.memory, axis=0)
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
    )


def check_clips(
    model: HarmonyNet,
    candidates: dict[str, decode_loop.StepModel],
    clips: list[tuple[str, np.ndarray]],
    canonical: bool = True,
) -> dict[str, list[ClipParity]]:
    """Every candidate against one JAX reference per clip (computed once)."""
    results: dict[str, list[ClipParity]] = {name: [] for name in candidates}
    for clip_name, audio in clips:
        reference = jax_reference(model, audio, canonical)
        for name, candidate in candidates.items():
            results[name].append(compare(candidate, reference, audio, clip_name, canonical))
    return results


def summary(rows: list[ClipParity]) -> dict:
    return {
        "tokens_identical": all(r.tokens_identical for r in rows),
        "notes_identical": all(r.notes_identical for r in rows),
        "encode_max_abs_diff": max(r.encode_max_abs_diff for r in rows),
        "token_agreement": float(np.mean([r.token_agreement for r in rows])),
        "clips": [r.to_json() for r in rows],
    }
