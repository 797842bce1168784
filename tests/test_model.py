"""HarmonyNet: shapes, dtypes and gradients under jit (fp32 and bf16 compute), the cached step
against teacher forcing, causality, trainable-subtree labels, dropout, and preset sizes."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from harmonynet_jax.config import ModelConfig
from harmonynet_jax.model import (
    LABELS,
    HarmonyNet,
    count_params,
    dropout,
    main,
    param_labels,
)
from harmonynet_jax.tokens import VOCAB

TINY = ModelConfig.preset("tiny")


@pytest.fixture(scope="module")
def tiny() -> HarmonyNet:
    return HarmonyNet(TINY, key=jax.random.key(0))


def audio_batch(cfg: ModelConfig, batch: int = 2, seed: int = 0) -> jax.Array:
    return 0.1 * jax.random.normal(jax.random.key(seed), (batch, cfg.segment_samples))


def random_tokens(batch: int, length: int, seed: int = 1) -> jax.Array:
    return jax.random.randint(jax.random.key(seed), (batch, length), 0, VOCAB.size)


@eqx.filter_jit
def encode(model: HarmonyNet, audio: jax.Array) -> jax.Array:
    return model.encode(audio)


@eqx.filter_jit
def run_all(model: HarmonyNet, audio: jax.Array, tokens: jax.Array, key: jax.Array | None):
    """Every entry point plus gradients of a joint (token + frame) loss, in one compile."""

    def loss(m: HarmonyNet):
        memory = m.encode(audio, key=key)
        frames = m.frame_logits(memory)
        logits = m.decode_train(memory, tokens, key=key)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, tokens).mean()
        onset = optax.sigmoid_binary_cross_entropy(frames["onset"], jnp.zeros_like(frames["onset"]))
        return ce + onset.mean(), (memory, frames, logits)

    (_, (memory, frames, logits)), grads = eqx.filter_value_and_grad(loss, has_aux=True)(model)
    cache = model.init_cache(memory)
    step_logits, cache = model.decode_step(tokens[:, 0], memory, cache, jnp.zeros((1,), int))
    return memory, frames, logits, step_logits, cache, grads


@pytest.fixture(scope="module")
def tiny_run(tiny: HarmonyNet):
    return run_all(tiny, audio_batch(TINY), random_tokens(2, 12), None)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_shapes_dtypes_and_gradients(dtype: str, tiny: HarmonyNet, tiny_run) -> None:
    """bf16 compute (with dropout on, here) keeps fp32 master weights and fp32 gradients."""
    batch, length = 2, 12
    if dtype == "float32":
        cfg, model, outputs = TINY, tiny, tiny_run
    else:
        cfg = dataclasses.replace(TINY, compute_dtype=dtype, dropout=0.2)
        model = HarmonyNet(cfg, key=jax.random.key(0))
        outputs = run_all(model, audio_batch(cfg), random_tokens(batch, length), jax.random.key(1))
        other = run_all(model, audio_batch(cfg), random_tokens(batch, length), jax.random.key(2))
        assert float(jnp.abs(outputs[2] - other[2]).max()) > 1e-3  # dropout masks differ
    memory, frames, logits, step_logits, cache, grads = outputs
    frames_t = cfg.segment_samples // cfg.frontend.hop  # the loader's frame-target count
    assert memory.shape == (batch, frames_t, cfg.d_model) and memory.dtype == jnp.dtype(dtype)
    assert set(frames) == {"onset", "frame", "offset", "velocity"}
    for value in frames.values():
        assert value.shape == (batch, frames_t, VOCAB.num_pitches) and value.dtype == jnp.float32
    assert logits.shape == (batch, length, VOCAB.size) and logits.dtype == jnp.float32
    assert step_logits.shape == (batch, VOCAB.size) and step_logits.dtype == jnp.float32
    head_dim = cfg.d_model // cfg.num_heads
    assert len(cache.self_k) == cfg.dec_layers
    assert cache.self_k[0].shape == (batch, cfg.num_heads, cfg.max_decode_len, head_dim)
    assert cache.cross_k[0].shape == (batch, cfg.num_heads, frames_t, head_dim)
    assert cache.self_k[0].dtype == jnp.dtype(dtype)
    assert all(np.isfinite(np.asarray(x, np.float32)).all() for x in (memory, logits))
    # Master weights and their gradients stay float32 whatever the compute dtype.
    params = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    assert {p.dtype for p in params} == {jnp.dtype(jnp.float32)}
    assert jax.tree.leaves(grads.frontend) == []
    for name in ("encoder", "frame_head", "decoder"):
        leaves = jax.tree.leaves(getattr(grads, name))
        assert leaves and all(x.dtype == jnp.float32 for x in leaves)
        assert all(np.isfinite(np.asarray(x)).all() for x in leaves)
        assert any(float(jnp.abs(x).max()) > 0 for x in leaves), name


def test_dropout_is_identity_without_key() -> None:
    x = jnp.ones((1000,))
    assert dropout(x, 0.5, None) is x
    y = np.asarray(dropout(x, 0.5, jax.random.key(0)))
    assert set(np.unique(y).tolist()) == {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6


def test_frame_count_for_other_lengths(tiny: HarmonyNet) -> None:
    """T = S // hop also for lengths that are not whole hops (the trailing part is dropped)."""
    hop = TINY.frontend.hop
    memory = encode(tiny, jnp.zeros((1, hop * 7 + hop // 3)))
    assert memory.shape == (1, 7, TINY.d_model)


def test_the_decoder_reads_where_each_memory_frame_lies(tiny: HarmonyNet) -> None:
    """Cross-attention alone is blind to frame order: rolling the memory in time would leave
    the logits unchanged. With frame positions added (`cross_source`), the decoder can tell
    when in the segment a note sounds, even on a frozen encoder whose memory lost it."""
    memory = encode(tiny, audio_batch(TINY, 1))
    rolled = jnp.roll(memory, 3, axis=1)
    tokens = random_tokens(1, 12, seed=2)
    same = tiny.decode_train(memory, tokens)
    moved = tiny.decode_train(rolled, tokens)
    assert float(jnp.abs(moved - same).max()) > 1e-3
    # A memory that is the same at every frame still yields different cross-attention values
    # per frame, so positions alone can steer the decoder.
    flat = jnp.broadcast_to(memory[:, :1], memory.shape)
    source = np.asarray(tiny.cross_source(flat, jnp.float32))
    assert np.abs(source[0, 1:] - source[0, :1]).max() > 0.1


@pytest.mark.parametrize("mode", ["shared_position", "per_row_position_no_cross_cache"])
def test_decode_step_matches_teacher_forcing(tiny: HarmonyNet, mode: str) -> None:
    batch, length = 3, 20
    tokens = random_tokens(batch, length, seed=5)

    @eqx.filter_jit
    def both(model: HarmonyNet, audio: jax.Array, tokens: jax.Array):
        memory = model.encode(audio)
        cache = model.init_cache(memory, length, precompute_cross=mode == "shared_position")

        def step(cache, i):
            position = jnp.full((batch,), i) if mode != "shared_position" else i[None]
            logits, cache = model.decode_step(tokens[:, i], memory, cache, position)
            return cache, logits

        _, stepped = jax.lax.scan(step, cache, jnp.arange(length))
        changed = model.decode_train(memory, tokens.at[:, 9:].set(VOCAB.pad))
        return model.decode_train(memory, tokens), jnp.swapaxes(stepped, 0, 1), changed

    full, stepped, changed = both(tiny, audio_batch(TINY, batch), tokens)
    np.testing.assert_allclose(np.asarray(stepped), np.asarray(full), atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(np.argmax(stepped, -1), np.argmax(full, -1))
    # Teacher forcing is causal: later tokens do not change earlier logits.
    np.testing.assert_allclose(np.asarray(changed[:, :9]), np.asarray(full[:, :9]), atol=1e-5)
    assert float(jnp.abs(changed[:, 9:] - full[:, 9:]).max()) > 1e-3


def test_labels_drive_optax_phases(tiny: HarmonyNet, tiny_run) -> None:
    """Phase A: encoder and frame head frozen (set_to_zero), decoder learns."""
    labels = param_labels(tiny)
    params = eqx.filter(tiny, eqx.is_inexact_array)
    assert jax.tree.structure(labels) == jax.tree.structure(params)
    assert set(jax.tree.leaves(labels)) == {"encoder", "frame_head", "decoder"}
    assert set(jax.tree.leaves(labels.encoder)) == {"encoder"}
    assert jax.tree.leaves(tiny.frontend) == []  # nothing trainable in the front end

    optimizer = optax.multi_transform(
        {"encoder": optax.set_to_zero(), "frame_head": optax.set_to_zero(),
         "decoder": optax.adam(1e-2)},
        labels,
    )
    update = jax.jit(lambda g, p: optimizer.update(g, optimizer.init(p), p)[0])
    new = eqx.apply_updates(tiny, update(tiny_run[-1], params))
    for name in LABELS[1:]:
        before = jax.tree.leaves(getattr(tiny, name))
        after = jax.tree.leaves(getattr(new, name))
        moved = any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
        assert moved == (name == "decoder"), name


def test_preset_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    """small and base match the sizes measured in DESIGN.md (4.8M, 9.9M)."""
    expected = {"tiny": (1e5, 5e5), "small": (4.5e6, 5.0e6), "small-conv2d": (4.5e6, 5.0e6),
                "base": (9.4e6, 10.2e6), "base-conv2d": (9.4e6, 10.2e6)}
    for name, (low, high) in expected.items():
        model = eqx.filter_eval_shape(HarmonyNet, ModelConfig.preset(name), key=jax.random.key(0))
        assert low < count_params(model) < high, name
    main(["--config", "small"])
    out = capsys.readouterr().out
    small = eqx.filter_eval_shape(HarmonyNet, ModelConfig.preset("small"), key=jax.random.key(0))
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert set(rows) == {*LABELS, "total"}
    assert rows["total"] == f"{count_params(small):,}"


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(TINY, num_heads=3)
    with pytest.raises(ValueError):
        dataclasses.replace(TINY, segment_samples=TINY.frontend.hop * 10 + 1)
    with pytest.raises(ValueError):
        ModelConfig.preset("huge")


def test_conv2d_stem_shapes_gradients_and_locality() -> None:
    """The 2-D conv stem: same memory shape as the dense stem, gradients reach all its convs,
    and its first conv only sees a 3 x 3 neighbourhood of (frame, mel bin)."""
    cfg = dataclasses.replace(TINY, stem="conv2d", stem_channels=4)
    model = HarmonyNet(cfg, key=jax.random.key(0))
    memory, frames, _, _, _, grads = run_all(model, audio_batch(cfg), random_tokens(2, 12), None)
    frames_t = cfg.segment_samples // cfg.frontend.hop
    assert memory.shape == (2, frames_t, cfg.d_model)
    assert frames["onset"].shape == (2, frames_t, VOCAB.num_pitches)
    stem_grads = jax.tree.leaves(grads.encoder.stem)
    assert len(stem_grads) == 8  # 3 convs (weight, bias) + projection (weight, bias)
    assert all(float(jnp.abs(g).max()) > 0 for g in stem_grads)
    first = model.encoder.stem.convs[0]
    mel = jnp.zeros((1, 9, cfg.frontend.n_mels, 1))
    bump = mel.at[0, 4, 20, 0].set(1.0)
    changed = np.argwhere(np.abs(np.asarray(first(bump) - first(mel))).max(-1)[0] > 0)
    assert changed[:, 0].min() == 3 and changed[:, 0].max() == 5  # frames 3..5
    assert changed[:, 1].min() == 19 and changed[:, 1].max() == 21  # mel bins 19..21
    with pytest.raises(ValueError):
        dataclasses.replace(TINY, stem="conv3d")
    with pytest.raises(ValueError):
        dataclasses.replace(cfg, frontend=dataclasses.replace(cfg.frontend, n_mels=66))


def test_configs_written_before_the_stem_field_load_as_dense(tmp_path) -> None:
    """Weights files and checkpoints from before `stem` existed keep loading (dense stem), and
    a conv2d run refuses such a checkpoint."""
    from harmonynet_jax.train.checkpoint import CheckpointError, check_model_config, config_dict
    from harmonynet_jax.weights import model_config_from_dict

    old = config_dict(TINY)
    del old["stem"], old["stem_channels"]
    assert model_config_from_dict(old) == TINY
    check_model_config({"model_config": old}, TINY, tmp_path)
    with pytest.raises(CheckpointError, match="another model config"):
        check_model_config({"model_config": old}, dataclasses.replace(TINY, stem="conv2d"),
                           tmp_path)
