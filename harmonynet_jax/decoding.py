"""Greedy, grammar-constrained decoding of token sequences from encoder memory.

`jax.lax.while_loop`s over positions, batched over segments, that stop as soon as every row
has emitted EOS. The cached path runs `HarmonyNet.decode_step` on a static-shape KV cache
(grown in doubling steps between loops, so early positions do not pay for max_len slots); the
uncached path re-runs the full causal decoder on the prefix each step (the reference that the
cache must match token for token). Both apply the same grammar mask (harmonynet_jax.grammar),
so every output decodes, and both leave PAD after EOS.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from harmonynet_jax import grammar
from harmonynet_jax.model import HarmonyNet, KVCache, cast_floating, compute_dtype
from harmonynet_jax.tokens import VOCAB


def default_num_steps(model: HarmonyNet) -> int:
    """Time steps (10 ms) in one of the model's segments."""
    samples = model.config.segment_samples
    if samples % VOCAB.samples_per_step:
        raise ValueError(f"segment_samples {samples} is not a whole number of 10 ms steps")
    return samples // VOCAB.samples_per_step


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
    cache_bucket: int | None = 64,
    stop_when_done: bool = True,
) -> Int[Array, "B L"]:
    """Tokens [B, max_len] (no SOS), each row ending in EOS then PAD.

    max_len: decoder positions to use (default config.max_decode_len); the grammar budget
    forces EOS by the last one. num_steps: segment length in steps, per row or shared (default
    from config.segment_samples), bounding TIME tokens. cache_bucket: the KV cache starts with
    this many slots and doubles (one while_loop per size) so a step attends over at most about
    twice the filled slots, not max_len; None keeps one max_len cache (a smaller program).
    stop_when_done=False runs all max_len steps even after every row has finished (timing).
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

    def running(carry, limit: int) -> Array:
        i, state = carry[0], carry[1]
        go = i < limit
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

        sizes = cache_sizes(length, cache_bucket)
        cache = model.init_cache(memory, sizes[0], precompute_cross=precompute_cross)
        carry = (i0, state0, out0, jnp.full((batch,), VOCAB.sos, jnp.int32), cache)
        for size in sizes:
            carry = (*carry[:4], grow_cache(carry[4], size))
            carry = jax.lax.while_loop(functools.partial(running, limit=size), body, carry)
        return carry[2]
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
        return jax.lax.while_loop(functools.partial(running, limit=length), body, carry)[2]


def cache_sizes(length: int, smallest: int | None) -> list[int]:
    """Cache sizes used in turn: smallest, 2x, 4x, ... then length (just [length] if None)."""
    sizes = []
    size = length if smallest is None else max(1, smallest)
    while size < length:
        sizes.append(size)
        size *= 2
    return [*sizes, length]


def grow_cache(cache: KVCache, size: int) -> KVCache:
    """The same cache with `size` self-attention slots (new slots empty; never shrinks)."""

    def grow(x: Array) -> Array:
        return jnp.pad(x, ((0, 0), (0, 0), (0, size - x.shape[2]), (0, 0)))

    return KVCache(
        tuple(grow(k) for k in cache.self_k),
        tuple(grow(v) for v in cache.self_v),
        cache.cross_k,
        cache.cross_v,
    )
