"""HarmonyNet: log-mel front end -> conv stem + pre-LN Transformer encoder -> causal Transformer
decoder with cross-attention over the encoder frames, plus an Onsets & Frames-style frame head.

The top-level attributes `frontend` (no trainable arrays), `encoder`, `frame_head` and
`decoder` are the labels training masks over (`param_labels`). Parameters are float32 master
weights; every entry point casts them to `config.compute_dtype` (gradients flow back to fp32).

Export habits (DESIGN.md): the one-step decoder takes rank-1 positions ([1] or [B]), looks up
embeddings with one-hot rows built by comparing with `arange`, and writes its static-shape KV
cache through `arange(L) == position` masks (no scatter, no dynamic_update_slice).

Run `python -m harmonynet_jax.model --config small` to print parameter counts.
"""

from __future__ import annotations

import argparse
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from harmonynet_jax.config import ModelConfig
from harmonynet_jax.frontend import LogMelFrontend

LABELS = ("frontend", "encoder", "frame_head", "decoder")
FRAME_HEADS = ("onset", "frame", "offset", "velocity")
_NEG = -1e9  # added to masked attention scores (softmax runs in float32)


def compute_dtype(config: ModelConfig) -> jnp.dtype:
    return jnp.dtype(config.compute_dtype)


def cast_floating(tree: PyTree, dtype: jnp.dtype) -> PyTree:
    """Casts the floating arrays of a pytree (a no-op for arrays already of `dtype`)."""
    return jax.tree.map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, tree)


def dropout(x: Array, rate: float, key: PRNGKeyArray | None) -> Array:
    """Inverted dropout; identity when `key` is None (inference) or rate is 0."""
    if key is None or rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0).astype(x.dtype)


def _split(key: PRNGKeyArray | None, n: int) -> list[PRNGKeyArray | None]:
    return [None] * n if key is None else list(jax.random.split(key, n))


def one_hot_rows(index: Int[Array, " N"], size: int, dtype: jnp.dtype) -> Float[Array, "N size"]:
    """One-hot rows by comparison with arange (exports as equal + select, not a gather)."""
    return (jnp.arange(size, dtype=jnp.int32)[None, :] == index[:, None]).astype(dtype)


def sinusoids(length: int, dim: int) -> np.ndarray:
    """Fixed sinusoidal positions [length, dim] (a constant, not a parameter)."""
    half = dim // 2
    freqs = np.exp(-math.log(10_000.0) * np.arange(half) / max(half - 1, 1))
    angles = np.arange(length)[:, None] * freqs[None, :]
    table = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    return np.pad(table, ((0, 0), (0, dim - 2 * half))).astype(np.float32)


class Linear(eqx.Module):
    """y = x W + b over the last axis (W [in, out]), any leading shape."""

    weight: Float[Array, "i o"]
    bias: Float[Array, " o"] | None

    def __init__(self, d_in: int, d_out: int, *, key: PRNGKeyArray, bias: bool = True,
                 scale: float = 1.0):
        std = scale / math.sqrt(d_in)
        self.weight = std * jax.random.truncated_normal(key, -2.0, 2.0, (d_in, d_out))
        self.bias = jnp.zeros((d_out,)) if bias else None

    def __call__(self, x: Float[Array, "... i"]) -> Float[Array, "... o"]:
        y = x @ self.weight
        return y if self.bias is None else y + self.bias


class LayerNorm(eqx.Module):
    """LayerNorm computed in float32 whatever the compute dtype (bf16 statistics drift)."""

    scale: Float[Array, " d"]
    bias: Float[Array, " d"]
    eps: float = eqx.field(static=True, default=1e-5)

    def __init__(self, dim: int):
        self.scale = jnp.ones((dim,))
        self.bias = jnp.zeros((dim,))

    def __call__(self, x: Float[Array, "... d"]) -> Float[Array, "... d"]:
        x32 = x.astype(jnp.float32)
        mean = x32.mean(-1, keepdims=True)
        var = jnp.square(x32 - mean).mean(-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + self.eps)
        y = y * self.scale.astype(jnp.float32) + self.bias.astype(jnp.float32)
        return y.astype(x.dtype)


class Conv1d(eqx.Module):
    """'same'-padded conv over time, channels last: [B, T, in] -> [B, T, out]."""

    weight: Float[Array, "k i o"]
    bias: Float[Array, " o"]

    def __init__(self, d_in: int, d_out: int, kernel: int, *, key: PRNGKeyArray):
        std = 1.0 / math.sqrt(d_in * kernel)
        self.weight = std * jax.random.truncated_normal(key, -2.0, 2.0, (kernel, d_in, d_out))
        self.bias = jnp.zeros((d_out,))

    def __call__(self, x: Float[Array, "B T i"]) -> Float[Array, "B T o"]:
        y = jax.lax.conv_general_dilated(
            x, self.weight, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC")
        )
        return y + self.bias


class Attention(eqx.Module):
    """Multi-head attention; projections are separate so K/V can be cached on their own."""

    query: Linear
    key: Linear
    value: Linear
    out: Linear
    num_heads: int = eqx.field(static=True)

    def __init__(self, dim: int, num_heads: int, out_scale: float, *, key: PRNGKeyArray):
        kq, kk, kv, ko = jax.random.split(key, 4)
        self.query = Linear(dim, dim, key=kq)
        self.key = Linear(dim, dim, key=kk)
        self.value = Linear(dim, dim, key=kv)
        self.out = Linear(dim, dim, key=ko, scale=out_scale)
        self.num_heads = num_heads

    def heads(self, proj: Linear, x: Float[Array, "B L D"]) -> Float[Array, "B H L Dh"]:
        """Heads-major layout, so attention over a cache needs no per-step transpose of it."""
        y = proj(x)
        y = y.reshape(*y.shape[:-1], self.num_heads, y.shape[-1] // self.num_heads)
        return jnp.swapaxes(y, -3, -2)

    def keys_values(self, x: Float[Array, "B L D"]) -> tuple[Array, Array]:
        return self.heads(self.key, x), self.heads(self.value, x)

    def attend(
        self,
        q: Float[Array, "B H Lq Dh"],
        k: Float[Array, "B H Lk Dh"],
        v: Float[Array, "B H Lk Dh"],
        mask: Bool[Array, "#B #Lq #Lk"] | None,
    ) -> Float[Array, "B Lq D"]:
        scores = jnp.einsum("bhqd,bhkd->bhqk", q, k, preferred_element_type=jnp.float32)
        scores = scores / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = jnp.where(mask[:, None], scores, _NEG)
        weights = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
        ctx = jnp.swapaxes(jnp.einsum("bhqk,bhkd->bhqd", weights, v), 1, 2)  # [B, Lq, H, Dh]
        return self.out(ctx.reshape(*ctx.shape[:2], -1))

    def __call__(
        self, x: Float[Array, "B Lq D"], source: Float[Array, "B Lk D"], mask: Array | None
    ) -> Float[Array, "B Lq D"]:
        k, v = self.keys_values(source)
        return self.attend(self.heads(self.query, x), k, v, mask)


class MLP(eqx.Module):
    up: Linear
    down: Linear

    def __init__(self, dim: int, ratio: int, out_scale: float, *, key: PRNGKeyArray):
        ku, kd = jax.random.split(key)
        self.up = Linear(dim, dim * ratio, key=ku)
        self.down = Linear(dim * ratio, dim, key=kd, scale=out_scale)

    def __call__(self, x: Float[Array, "... D"]) -> Float[Array, "... D"]:
        return self.down(jax.nn.gelu(self.up(x)))


class EncoderLayer(eqx.Module):
    norm_attn: LayerNorm
    attn: Attention
    norm_mlp: LayerNorm
    mlp: MLP

    def __init__(self, cfg: ModelConfig, out_scale: float, *, key: PRNGKeyArray):
        ka, km = jax.random.split(key)
        self.norm_attn = LayerNorm(cfg.d_model)
        self.attn = Attention(cfg.d_model, cfg.num_heads, out_scale, key=ka)
        self.norm_mlp = LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg.d_model, cfg.mlp_ratio, out_scale, key=km)

    def __call__(self, x: Float[Array, "B T D"], rate: float, key: PRNGKeyArray | None):
        k1, k2 = _split(key, 2)
        h = self.norm_attn(x)
        x = x + dropout(self.attn(h, h, None), rate, k1)
        return x + dropout(self.mlp(self.norm_mlp(x)), rate, k2)


class Conv2d(eqx.Module):
    """'same'-padded 2-D conv over (frame, frequency), channels last; `freq_stride` subsamples
    the frequency axis: [B, T, F, i] -> [B, T, F / freq_stride, o]."""

    weight: Float[Array, "kt kf i o"]
    bias: Float[Array, " o"]
    freq_stride: int = eqx.field(static=True)

    def __init__(self, d_in: int, d_out: int, kernel: int, freq_stride: int, *,
                 key: PRNGKeyArray):
        std = 1.0 / math.sqrt(d_in * kernel * kernel)
        shape = (kernel, kernel, d_in, d_out)
        self.weight = std * jax.random.truncated_normal(key, -2.0, 2.0, shape)
        self.bias = jnp.zeros((d_out,))
        self.freq_stride = freq_stride

    def __call__(self, x: Float[Array, "B T F i"]) -> Float[Array, "B T F2 o"]:
        y = jax.lax.conv_general_dilated(
            x, self.weight, (1, self.freq_stride), "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return y + self.bias


class DenseStem(eqx.Module):
    """Two 'same' convs over frames with the mel bins as channels, GELU after each."""

    conv_in: Conv1d
    conv_out: Conv1d

    def __init__(self, cfg: ModelConfig, *, keys: tuple[PRNGKeyArray, PRNGKeyArray]):
        k_in, k_out = keys
        self.conv_in = Conv1d(cfg.frontend.n_mels, cfg.d_model, cfg.stem_kernel, key=k_in)
        self.conv_out = Conv1d(cfg.d_model, cfg.d_model, cfg.stem_kernel, key=k_out)

    def __call__(self, mel: Float[Array, "B T M"]) -> Float[Array, "B T D"]:
        return jax.nn.gelu(self.conv_out(jax.nn.gelu(self.conv_in(mel))))


class Conv2dStem(eqx.Module):
    """Three 3x3 convs over (frame, mel bin) — the 2nd and 3rd strided by 2 in frequency — then
    the M/4 x 2C feature map of each frame projected to d_model (strides, not pooling: every
    converter maps a strided conv)."""

    convs: tuple[Conv2d, Conv2d, Conv2d]
    proj: Linear

    def __init__(self, cfg: ModelConfig, *, key: PRNGKeyArray):
        k1, k2, k3, k_proj = jax.random.split(key, 4)
        c, k = cfg.stem_channels, cfg.stem_kernel
        self.convs = (Conv2d(1, c, k, 1, key=k1), Conv2d(c, c, k, 2, key=k2),
                      Conv2d(c, 2 * c, k, 2, key=k3))
        self.proj = Linear(cfg.frontend.n_mels // 4 * 2 * c, cfg.d_model, key=k_proj)

    def __call__(self, mel: Float[Array, "B T M"]) -> Float[Array, "B T D"]:
        x = mel[..., None]  # [B, T, M, 1]
        for conv in self.convs:
            x = jax.nn.gelu(conv(x))
        b, t, f, c = x.shape  # [B, T, M/4, 2C]
        return self.proj(x.reshape(b, t, f * c))


class Encoder(eqx.Module):
    """Conv stem (`ModelConfig.stem`) + sinusoidal positions + pre-LN blocks."""

    stem: DenseStem | Conv2dStem
    layers: tuple[EncoderLayer, ...]
    norm: LayerNorm

    def __init__(self, cfg: ModelConfig, *, key: PRNGKeyArray):
        k_a, k_b, *k_layers = jax.random.split(key, 2 + cfg.enc_layers)
        self.stem = (Conv2dStem(cfg, key=k_a) if cfg.stem == "conv2d"
                     else DenseStem(cfg, keys=(k_a, k_b)))
        out_scale = 1.0 / math.sqrt(2 * cfg.enc_layers)
        self.layers = tuple(EncoderLayer(cfg, out_scale, key=k) for k in k_layers)
        self.norm = LayerNorm(cfg.d_model)

    def __call__(
        self, mel: Float[Array, "B T M"], rate: float, key: PRNGKeyArray | None
    ) -> Float[Array, "B T D"]:
        keys = _split(key, len(self.layers) + 1)
        x = self.stem(mel)
        x = x + jnp.asarray(sinusoids(x.shape[1], x.shape[2]), x.dtype)
        x = dropout(x, rate, keys[0])
        for layer, k in zip(self.layers, keys[1:], strict=True):
            x = layer(x, rate, k)
        return self.norm(x)


class FrameHead(eqx.Module):
    """Per-frame onset / frame / offset logits and velocity for 88 keys, from encoder memory."""

    proj: Linear
    num_pitches: int = eqx.field(static=True)

    def __init__(self, cfg: ModelConfig, num_pitches: int, *, key: PRNGKeyArray):
        self.proj = Linear(cfg.d_model, len(FRAME_HEADS) * num_pitches, key=key)
        self.num_pitches = num_pitches

    def __call__(self, memory: Float[Array, "B T D"]) -> dict[str, Float[Array, "B T P"]]:
        y = self.proj(memory).astype(jnp.float32)
        y = y.reshape(*y.shape[:-1], len(FRAME_HEADS), self.num_pitches)
        return {name: y[..., i, :] for i, name in enumerate(FRAME_HEADS)}


class KVCache(eqx.Module):
    """Static-shape decoder cache. self_*: [B, H, L, Dh] per layer (slot j = position j).

    cross_*: the cross-attention keys/values of the memory per layer [B, H, T, Dh], computed
    once by `init_cache`; None means `decode_step` recomputes them from `memory` every step
    (fewer state tensors for an exported step function, more compute).
    """

    self_k: tuple[Array, ...]
    self_v: tuple[Array, ...]
    cross_k: tuple[Array, ...] | None
    cross_v: tuple[Array, ...] | None


class DecoderLayer(eqx.Module):
    norm_self: LayerNorm
    self_attn: Attention
    norm_cross: LayerNorm
    cross_attn: Attention
    norm_mlp: LayerNorm
    mlp: MLP

    def __init__(self, cfg: ModelConfig, out_scale: float, *, key: PRNGKeyArray):
        ks, kc, km = jax.random.split(key, 3)
        self.norm_self = LayerNorm(cfg.d_model)
        self.self_attn = Attention(cfg.d_model, cfg.num_heads, out_scale, key=ks)
        self.norm_cross = LayerNorm(cfg.d_model)
        self.cross_attn = Attention(cfg.d_model, cfg.num_heads, out_scale, key=kc)
        self.norm_mlp = LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg.d_model, cfg.mlp_ratio, out_scale, key=km)

    def __call__(
        self,
        x: Float[Array, "B L D"],
        memory: Float[Array, "B T D"],
        causal: Bool[Array, "1 L L"],
        rate: float,
        key: PRNGKeyArray | None,
    ) -> Float[Array, "B L D"]:
        k1, k2, k3 = _split(key, 3)
        h = self.norm_self(x)
        x = x + dropout(self.self_attn(h, h, causal), rate, k1)
        x = x + dropout(self.cross_attn(self.norm_cross(x), memory, None), rate, k2)
        return x + dropout(self.mlp(self.norm_mlp(x)), rate, k3)

    def step(
        self,
        x: Float[Array, "B 1 D"],
        cache_k: Float[Array, "B H L Dh"],
        cache_v: Float[Array, "B H L Dh"],
        cross_kv: tuple[Array, Array],
        position: Int[Array, " N"],
    ) -> tuple[Float[Array, "B 1 D"], Array, Array]:
        """One position of __call__; writes this position's K/V into the cache by mask."""
        length = cache_k.shape[2]
        slots = jnp.arange(length, dtype=jnp.int32)[None, :]  # [1, L]
        h = self.norm_self(x)
        q = self.self_attn.heads(self.self_attn.query, h)
        k, v = self.self_attn.keys_values(h)  # [B, H, 1, Dh]
        write = (slots == position[:, None])[:, None, :, None]  # [N, 1, L, 1]
        cache_k = jnp.where(write, k, cache_k)
        cache_v = jnp.where(write, v, cache_v)
        visible = (slots <= position[:, None])[:, None, :]  # [N, 1, L]
        x = x + self.self_attn.attend(q, cache_k, cache_v, visible)
        hc = self.norm_cross(x)
        x = x + self.cross_attn.attend(
            self.cross_attn.heads(self.cross_attn.query, hc), *cross_kv, None
        )
        return x + self.mlp(self.norm_mlp(x)), cache_k, cache_v


class Decoder(eqx.Module):
    """Causal Transformer over tokens with learned positions and an untied output head."""

    token_embed: Float[Array, "V D"]
    pos_embed: Float[Array, "L D"]
    layers: tuple[DecoderLayer, ...]
    norm: LayerNorm
    head: Linear

    def __init__(self, cfg: ModelConfig, vocab_size: int, *, key: PRNGKeyArray):
        kt, kp, kh, *k_layers = jax.random.split(key, 3 + cfg.dec_layers)
        self.token_embed = 0.02 * jax.random.normal(kt, (vocab_size, cfg.d_model))
        self.pos_embed = 0.02 * jax.random.normal(kp, (cfg.max_decode_len, cfg.d_model))
        out_scale = 1.0 / math.sqrt(3 * cfg.dec_layers)
        self.layers = tuple(DecoderLayer(cfg, out_scale, key=k) for k in k_layers)
        self.norm = LayerNorm(cfg.d_model)
        self.head = Linear(cfg.d_model, vocab_size, key=kh)

    def logits(self, x: Float[Array, "... D"]) -> Float[Array, "... V"]:
        return self.head(self.norm(x)).astype(jnp.float32)


class HarmonyNet(eqx.Module):
    """Audio segments -> encoder memory -> frame logits and/or token logits."""

    config: ModelConfig = eqx.field(static=True)
    frontend: LogMelFrontend
    encoder: Encoder
    frame_head: FrameHead
    decoder: Decoder

    def __init__(
        self,
        config: ModelConfig,
        *,
        key: PRNGKeyArray,
        vocab_size: int | None = None,
        num_pitches: int | None = None,
        sample_rate: int | None = None,
    ):
        """Sizes not in `config` (vocabulary, keys, sample rate) default to tokens.VOCAB."""
        if vocab_size is None or num_pitches is None or sample_rate is None:
            from harmonynet_jax.tokens import VOCAB

            vocab_size = VOCAB.size if vocab_size is None else vocab_size
            num_pitches = VOCAB.num_pitches if num_pitches is None else num_pitches
            sample_rate = VOCAB.sample_rate if sample_rate is None else sample_rate
        ke, kf, kd = jax.random.split(key, 3)
        self.config = config
        self.frontend = LogMelFrontend(config.frontend, sample_rate)
        self.encoder = Encoder(config, key=ke)
        self.frame_head = FrameHead(config, num_pitches, key=kf)
        self.decoder = Decoder(config, vocab_size, key=kd)

    @property
    def vocab_size(self) -> int:
        return self.decoder.token_embed.shape[0]

    def encode(
        self, audio: Float[Array, "B S"], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, "B T D"]:
        """Memory of S // hop frames (frame i centred on sample i*hop + hop/2)."""
        dtype = compute_dtype(self.config)
        mel = self.frontend(audio.astype(jnp.float32)).astype(dtype)
        return cast_floating(self.encoder, dtype)(mel, self.config.dropout, key)

    def frame_logits(self, memory: Float[Array, "B T D"]) -> dict[str, Float[Array, "B T P"]]:
        """{"onset", "frame", "offset"}: logits; "velocity": linear output (regress v/127)."""
        return cast_floating(self.frame_head, memory.dtype)(memory)

    @staticmethod
    def cross_source(memory: Float[Array, "B T D"], dtype: jnp.dtype) -> Float[Array, "B T D"]:
        """What the decoder's cross-attention reads: the memory plus sinusoidal frame positions.
        The frame head's loss is the same at every frame, so a memory trained by it (phase 0)
        carries little of where a frame lies; without positions here, a decoder on the frozen
        encoder (phase A) cannot tell when in the segment a note sounds."""
        table = jnp.asarray(sinusoids(memory.shape[1], memory.shape[2]), jnp.float32)
        return (memory.astype(jnp.float32) + table).astype(dtype)

    def decode_train(
        self,
        memory: Float[Array, "B T D"],
        tokens: Int[Array, "B L"],
        *,
        key: PRNGKeyArray | None = None,
    ) -> Float[Array, "B L V"]:
        """Teacher forcing: logits[:, j] predicts the token after tokens[:, :j+1] (causal)."""
        dtype = compute_dtype(self.config)
        dec = cast_floating(self.decoder, dtype)
        memory = self.cross_source(memory, dtype)
        length = tokens.shape[1]
        if length > dec.pos_embed.shape[0]:
            raise ValueError(f"{length} tokens exceed max_decode_len {dec.pos_embed.shape[0]}")
        keys = _split(key, len(dec.layers) + 1)
        x = jnp.take(dec.token_embed, tokens, axis=0) + dec.pos_embed[:length]
        x = dropout(x, self.config.dropout, keys[0])
        causal = jnp.tril(jnp.ones((length, length), bool))[None]
        for layer, k in zip(dec.layers, keys[1:], strict=True):
            x = layer(x, memory, causal, self.config.dropout, k)
        return dec.logits(x)

    def init_cache(
        self,
        memory: Float[Array, "B T D"],
        length: int | None = None,
        *,
        precompute_cross: bool = True,
    ) -> KVCache:
        """An empty self-attention cache of `length` slots (default max_decode_len)."""
        dtype = compute_dtype(self.config)
        dec = cast_floating(self.decoder, dtype)
        length = self.config.max_decode_len if length is None else length
        batch = memory.shape[0]
        heads = self.config.num_heads
        shape = (batch, heads, length, self.config.d_model // heads)
        zeros = tuple(jnp.zeros(shape, dtype) for _ in dec.layers)
        if not precompute_cross:
            return KVCache(zeros, zeros, None, None)
        source = self.cross_source(memory, dtype)
        kv = [layer.cross_attn.keys_values(source) for layer in dec.layers]
        return KVCache(zeros, zeros, tuple(k for k, _ in kv), tuple(v for _, v in kv))

    def decode_step(
        self,
        token: Int[Array, " B"],
        memory: Float[Array, "B T D"],
        cache: KVCache,
        position: Int[Array, " N"],
    ) -> tuple[Float[Array, "B V"], KVCache]:
        """Logits for the token after `token`, which sits at `position` ([1] or [B]).

        Equals decode_train's logits at that position given the same prefix (up to float
        rounding); `memory` is only read when the cache holds no cross-attention K/V.
        """
        dtype = compute_dtype(self.config)
        dec = cast_floating(self.decoder, dtype)
        position = position.astype(jnp.int32).reshape(-1)
        x = one_hot_rows(token.astype(jnp.int32), dec.token_embed.shape[0], dtype)
        x = x @ dec.token_embed
        x = x + one_hot_rows(position, dec.pos_embed.shape[0], dtype) @ dec.pos_embed
        x = x[:, None, :]  # [B, 1, D]
        new_k, new_v = [], []
        recompute = cache.cross_k is None or cache.cross_v is None
        source = self.cross_source(memory, dtype) if recompute else None
        for i, layer in enumerate(dec.layers):
            if source is not None:
                cross = layer.cross_attn.keys_values(source)
            else:
                cross = (cache.cross_k[i], cache.cross_v[i])
            x, k, v = layer.step(x, cache.self_k[i], cache.self_v[i], cross, position)
            new_k.append(k)
            new_v.append(v)
        cache = KVCache(tuple(new_k), tuple(new_v), cache.cross_k, cache.cross_v)
        return dec.logits(x[:, 0]), cache


def param_labels(model: HarmonyNet) -> PyTree:
    """Same structure as eqx.filter(model, eqx.is_inexact_array), each array leaf replaced by
    the name of its top-level subtree (LABELS) — the labels for optax.multi_transform."""
    params = eqx.filter(model, eqx.is_inexact_array)
    for name in LABELS:
        params = eqx.tree_at(
            lambda m, n=name: getattr(m, n),
            params,
            jax.tree.map(lambda _, n=name: n, getattr(params, name)),
        )
    return params


def _is_float_leaf(x: object) -> bool:
    """Floating arrays, including the ShapeDtypeStructs of an eval_shape'd model."""
    dtype = getattr(x, "dtype", None)
    return hasattr(x, "shape") and dtype is not None and jnp.issubdtype(dtype, jnp.inexact)


def count_params(tree: PyTree) -> int:
    return sum(math.prod(x.shape) for x in jax.tree.leaves(tree) if _is_float_leaf(x))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print the parameter count of a preset.")
    parser.add_argument("--config", default="small",
                        choices=["tiny", "small", "small-conv2d", "base", "base-conv2d"])
    args = parser.parse_args(argv)
    config = ModelConfig.preset(args.config)
    model = eqx.filter_eval_shape(HarmonyNet, config, key=jax.random.key(0))
    print(f"preset {args.config}: {config}")
    for name in LABELS:
        print(f"  {name:<11} {count_params(getattr(model, name)):>12,}")
    print(f"  {'total':<11} {count_params(model):>12,}")


if __name__ == "__main__":
    main()
