"""Greedy, grammar-constrained decoding of token sequences from encoder memory.

One `jax.lax.while_loop` over positions, batched over segments, that stops as soon as every row
has emitted EOS. The cached path runs `HarmonyNet.decode_step` on a static-shape KV cache; the
uncached path re-runs the full causal decoder on the prefix each step (the reference that the
cache must match token for token). Both apply the same grammar mask (harmonynet_jax.grammar),
so every output decodes, and both leave PAD after EOS.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from harmonynet_jax import grammar
from harmonynet_jax.model import HarmonyNet, cast_floating, compute_dtype
from harmonynet_jax.tokens import VOCAB


def default_num_steps(model: HarmonyNet) -> int:
    """Time steps (10 ms) in one of the model's segments."""
    return model.config.segment_samples // VOCAB.samples_per_step


@eqx.filter_jit
def greedy_decode(
    model: HarmonyNet,
    memory: Float[Array, "B T D"],
    *,
    max_len: int | None = None,
    num_steps: int | Int[Array, " B"] | None = None,
    canonical: bool = True,
    use_cache: bool = True,
    precompute_cross: bool = True,
    stop_when_done: bool = True,
) -> Int[Array, "B L"]:
    """Tokens [B, max_len] (no SOS), each row ending in EOS then PAD.

    max_len: decoder positions to use (default config.max_decode_len); the grammar budget
    forces EOS by the last one. num_steps: segment length in steps, per row or shared (default
    from config.segment_samples), bounding TIME tokens. stop_when_done=False runs all max_len
    steps even after every row has finished (for timing).
    """
    length = model.config.max_decode_len if max_len is None else max_len
    if not 2 <= length <= model.config.max_decode_len:
        raise ValueError(f"max_len must be in 2..{model.config.max_decode_len}, got {length}")
    if num_steps is None:
        num_steps = default_num_steps(model)
    batch = memory.shape[0]
    model = cast_floating(model, compute_dtype(model.config))  # cast once, not every step
    memory = memory.astype(compute_dtype(model.config))
    slots = jnp.arange(length, dtype=jnp.int32)[None, :]

    def pick(logits: Float[Array, "B V"], state: grammar.GrammarState, i: Array) -> Array:
        legal = grammar.legal_mask(state, length - i, canonical=canonical)
        return jnp.argmax(jnp.where(legal, logits, -jnp.inf), axis=-1).astype(jnp.int32)

    def running(carry) -> Array:
        i, state = carry[0], carry[1]
        go = i < length
        if stop_when_done:
            go = go & jnp.any(state.section != grammar.DONE)
        return go

    out0 = jnp.full((batch, length), VOCAB.pad, jnp.int32)
    state0 = grammar.init_state(batch, num_steps)
    i0 = jnp.zeros((), jnp.int32)

    if use_cache:

        def body(carry):
            i, state, out, prev, cache = carry
            logits, cache = model.decode_step(prev, memory, cache, i[None])
            token = pick(logits, state, i)
            out = jnp.where(slots == i, token[:, None], out)
            return i + 1, grammar.advance(state, token), out, token, cache

        cache0 = model.init_cache(memory, length, precompute_cross=precompute_cross)
        prev0 = jnp.full((batch,), VOCAB.sos, jnp.int32)
        carry = (i0, state0, out0, prev0, cache0)
    else:

        def body(carry):
            i, state, out = carry
            inputs = jnp.concatenate([jnp.full((batch, 1), VOCAB.sos, jnp.int32), out[:, :-1]], 1)
            logits = model.decode_train(memory, inputs)  # [B, L, V], causal
            logits = jax.lax.dynamic_index_in_dim(logits, i, axis=1, keepdims=False)
            token = pick(logits, state, i)
            out = jnp.where(slots == i, token[:, None], out)
            return i + 1, grammar.advance(state, token), out

        carry = (i0, state0, out0)

    return jax.lax.while_loop(running, body, carry)[2]


@eqx.filter_jit
def transcribe_segments(
    model: HarmonyNet,
    audio: Float[Array, "B S"],
    *,
    max_len: int | None = None,
    canonical: bool = True,
) -> Int[Array, "B L"]:
    """Audio segments [B, segment_samples] -> constrained greedy tokens [B, max_len]."""
    return greedy_decode(model, model.encode(audio), max_len=max_len, canonical=canonical)
