"""The reference decode loop of an app: tile the audio into segments, `encode` each once, then
greedy `decode_step` with the grammar mask applied on the host (export.host_grammar), and turn
the tokens into notes with the project's own decoder (tokens.decode_segment + tokens.stitch).

It drives any `StepModel` (the TFLite signature runners, or the same functions under jax.jit),
so the parity check compares exactly what an Android or iOS app would run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from export import host_grammar
from export.contract import Contract
from export.stablehlo import ExportFunctions
from harmonynet_jax import tokens
from harmonynet_jax.tokens import VOCAB, Note, Pedal


class StepModel(Protocol):
    contract: Contract

    def encode(self, audio: np.ndarray) -> np.ndarray: ...

    def decode_step(
        self, token: int, memory: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray,
        position: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


@eqx.filter_jit
def _jax_encode(functions: ExportFunctions, audio: jax.Array) -> jax.Array:
    return functions.encode(audio)


@eqx.filter_jit
def _jax_step(functions: ExportFunctions, *args: jax.Array):
    return functions.decode_step(*args)


class JaxStepModel:
    """The exported functions under jit, batch 1: isolates loop bugs from converter bugs.

    Weights are jit arguments (not constants), so models of one config share a compilation.
    """

    def __init__(self, functions: ExportFunctions):
        self.contract = functions.contract
        self.functions = functions

    def encode(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, np.float32).reshape(1, self.contract.segment_samples)
        return np.asarray(_jax_encode(self.functions, jnp.asarray(audio)))

    def decode_step(self, token, memory, k_cache, v_cache, position):
        logits, k, v = _jax_step(
            self.functions, jnp.array([token], jnp.int32), jnp.asarray(memory), k_cache,
            v_cache, jnp.array([position], jnp.int32),
        )
        return np.asarray(logits)[0], k, v


def segments(audio: np.ndarray, segment_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """[n, segment_samples] consecutive segments tiling the audio (the last zero-padded), and
    the grid steps of real audio in each: a partial last segment bounds its TIME tokens by
    its own length, as harmonynet_jax.inference does."""
    audio = np.asarray(audio, np.float32).reshape(-1)
    count = max(1, -(-audio.size // segment_samples))
    padded = np.zeros(count * segment_samples, np.float32)
    padded[: audio.size] = audio
    valid = np.clip(audio.size - segment_samples * np.arange(count), 0, segment_samples)
    steps = np.maximum(1, -(-valid // VOCAB.samples_per_step)).astype(np.int32)
    return padded.reshape(count, segment_samples), steps


def greedy_decode(
    model: StepModel, memory: np.ndarray, *, canonical: bool = True, num_steps: int | None = None
) -> np.ndarray:
    """Tokens [max_decode_len] (no SOS) of one segment: ... EOS PAD ... (as decoding.greedy_decode).

    Position i feeds the previous token (SOS at 0) and picks the highest-scoring token the
    grammar allows with max_decode_len - i positions left, so EOS always fits.
    """
    c = model.contract
    length = c.max_decode_len
    state = host_grammar.HostState(num_steps=c.num_steps if num_steps is None else num_steps)
    k_cache = np.zeros(c.cache_shape, np.float32)
    v_cache = np.zeros(c.cache_shape, np.float32)
    out = np.full(length, VOCAB.pad, np.int32)
    prev = VOCAB.sos
    for i in range(length):
        if state.section == host_grammar.DONE:
            break  # the rest is PAD
        logits, k_cache, v_cache = model.decode_step(prev, memory, k_cache, v_cache, i)
        legal = host_grammar.legal_mask(state, length - i, canonical=canonical)
        prev = int(np.argmax(np.where(legal, logits, -np.inf)))
        out[i] = prev
        state = host_grammar.advance(state, prev)
    return out


@dataclass
class Transcription:
    memory: list[np.ndarray]  # per segment [1, T, D]
    tokens: np.ndarray  # [segments, max_decode_len]
    notes: list[Note]
    pedals: list[Pedal]


def transcribe(model: StepModel, audio: np.ndarray, *, canonical: bool = True) -> Transcription:
    """Whole-recording loop: encode once per segment, greedy decode, stitch, clip to the end."""
    c = model.contract
    segs, steps = segments(audio, c.segment_samples)
    memory, rows = [], []
    for segment, num_steps in zip(segs, steps, strict=True):
        mem = model.encode(segment[None])
        memory.append(np.asarray(mem))
        rows.append(greedy_decode(model, mem, canonical=canonical, num_steps=int(num_steps)))
    token_rows = np.stack(rows)
    notes, pedals = notes_of(token_rows, c.num_steps, np.asarray(audio).size)
    return Transcription(memory, token_rows, notes, pedals)


def notes_of(
    token_rows: np.ndarray, segment_steps: int, num_samples: int
) -> tuple[list[Note], list[Pedal]]:
    """Notes and pedal spans of consecutive segments, in seconds from the start: stitched by
    their ties, then clipped to the audio's end (rounded up to the 10 ms grid); what starts
    at or after the end is dropped."""
    notes, pedals = tokens.stitch([tokens.decode_segment(r) for r in token_rows], segment_steps)
    end = -(-num_samples // VOCAB.samples_per_step) * VOCAB.step_seconds
    return (
        [Note(n.onset, min(n.offset, end), n.pitch, n.velocity) for n in notes if n.onset < end],
        [Pedal(p.onset, min(p.offset, end)) for p in pedals if p.onset < end],
    )
