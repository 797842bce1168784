"""The reference loops of an app.

Token decoder: tile the audio into consecutive segments, `encode` each once, then greedy
`decode_step` with the grammar mask applied on the host (export.host_grammar), and turn the
tokens into notes with the project's own decoder (tokens.decode_segment + tokens.stitch).

Frame decoder: tile the audio into overlapping segments (manifest `decoding.margin_samples` of
context at each side), `encode` then `frame_probs` each, keep each segment's middle, and decode
the joined probabilities with Onsets & Frames (frames.frames_to_notes) — the tiling and joining
of harmonynet_jax.inference, reused here rather than re-implemented.

Both drive any model with the signatures (the TFLite signature runners, or the same functions
under jax.jit), so the parity check compares exactly what an Android or iOS app would run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from export import host_grammar
from export.contract import FRAME_OUTPUTS, Contract, Decoding
from export.stablehlo import ExportFunctions
from harmonynet_jax import inference, tokens
from harmonynet_jax.tokens import VOCAB, Note, Pedal


class EncodeModel(Protocol):
    contract: Contract

    def encode(self, audio: np.ndarray) -> np.ndarray: ...


class FrameModel(EncodeModel, Protocol):
    def frame_probs(self, memory: np.ndarray) -> dict[str, np.ndarray]: ...


class StepModel(EncodeModel, Protocol):
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


@eqx.filter_jit
def _jax_frame_probs(functions: ExportFunctions, memory: jax.Array):
    return functions.frame_probs(memory)


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

    def frame_probs(self, memory: np.ndarray) -> dict[str, np.ndarray]:
        probs = _jax_frame_probs(self.functions, jnp.asarray(memory))
        return {k: np.asarray(p) for k, p in zip(FRAME_OUTPUTS, probs, strict=True)}


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


def frame_probabilities(
    model: FrameModel, audio: np.ndarray, decoding: Decoding
) -> inference.FrameJoiner:
    """The frame head over a whole recording, as an app computes it: overlapping segments
    (`decoding.margin_samples` of context each side), one at a time, middles kept."""
    c = model.contract
    audio = np.asarray(audio, np.float32).reshape(-1)
    tiling = inference.Tiling(c.segment_samples, c.frames, c.hop_samples, decoding.margin_frames)
    joiner = tiling.frame_joiner(audio.size, c.num_pitches)
    for chunk in tiling.chunks(audio, 1):
        joiner.add(chunk.first, model.frame_probs(model.encode(chunk.audio)), chunk.count)
    return joiner


def frame_notes(model: FrameModel, audio: np.ndarray, decoding: Decoding) -> list[Note]:
    """Notes of the frame decoder over a whole recording (the manifest's thresholds)."""
    num_frames = inference.frame_count(np.asarray(audio).size, model.contract.hop_samples)
    joiner = frame_probabilities(model, audio, decoding)
    return joiner.finish(num_frames, decoding.hop_seconds, decoding.frames)
