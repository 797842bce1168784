"""Losses of the two heads: token cross-entropy for the decoder, Onsets & Frames for the
encoder's frame head."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int

from harmonynet_jax.model import HarmonyNet
from harmonynet_jax.tokens import VOCAB


def decoder_inputs(tokens: Int[Array, "B L"]) -> Int[Array, "B L"]:
    """Teacher forcing: SOS, then the targets shifted right by one."""
    sos = jnp.full((tokens.shape[0], 1), VOCAB.sos, tokens.dtype)
    return jnp.concatenate([sos, tokens[:, :-1]], axis=1)


def token_loss(
    logits: Float[Array, "B L V"],
    targets: Int[Array, "B L"],
    mask: Bool[Array, "B L"],
    label_smoothing: float = 0.0,
) -> tuple[Array, dict[str, Array]]:
    logits = logits.astype(jnp.float32)
    labels = jax.nn.one_hot(targets, logits.shape[-1])
    if label_smoothing > 0:
        labels = optax.smooth_labels(labels, label_smoothing)
    per_token = optax.softmax_cross_entropy(logits, labels)
    weight = mask.astype(jnp.float32)
    count = jnp.maximum(weight.sum(), 1.0)
    loss = (per_token * weight).sum() / count
    correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
    return loss, {"token_loss": loss, "token_acc": (correct * weight).sum() / count}


def frame_loss(
    logits: dict[str, Float[Array, "B T P"]],
    batch: dict[str, Array],
    onset_weight: float = 1.0,
    onset_pos_weight: float = 1.0,
) -> tuple[Array, dict[str, Array]]:
    """BCE on onset / frame / offset, and velocity regressed where an onset is (O&F).

    Onsets fill about one key-frame cell in a thousand; `onset_pos_weight` > 1 weights the
    positive cells up so the onset head fires before many epochs have passed."""
    parts = {}
    for head in ("onset", "frame", "offset"):
        x = logits[head].astype(jnp.float32)
        y = batch[head]
        weight = onset_pos_weight if head == "onset" else 1.0
        # Positive-weighted BCE: -(w·y·log σ(x) + (1-y)·log(1-σ(x))).
        bce = weight * y * jax.nn.softplus(-x) + (1.0 - y) * jax.nn.softplus(x)
        parts[f"{head}_loss"] = bce.mean()
    onset = batch["onset"]
    velocity = jax.nn.sigmoid(logits["velocity"].astype(jnp.float32))
    parts["velocity_loss"] = ((velocity - batch["velocity"]) ** 2 * onset).sum() / jnp.maximum(
        onset.sum(), 1.0
    )
    total = (
        onset_weight * parts["onset_loss"]
        + parts["frame_loss"]
        + parts["offset_loss"]
        + parts["velocity_loss"]
    )
    return total, {"frame_total": total, **parts}


def phase_loss(
    model: HarmonyNet,
    batch: dict[str, Array],
    key: Array | None,
    *,
    phase: str,
    label_smoothing: float,
    frame_loss_weight: float,
    onset_weight: float,
    onset_pos_weight: float = 1.0,
) -> tuple[Array, dict[str, Array]]:
    """The loss a phase optimises. Phase A cuts the gradient at the encoder output, so the
    frozen encoder costs no backward pass."""
    enc_key, dec_key = (None, None) if key is None else jax.random.split(key)
    memory = model.encode(batch["audio"], key=enc_key)
    metrics: dict[str, Array] = {}
    total = jnp.zeros((), jnp.float32)
    if phase in ("0", "B"):
        f_loss, f_metrics = frame_loss(model.frame_logits(memory), batch, onset_weight,
                                       onset_pos_weight)
        metrics.update(f_metrics)
        total = total + (1.0 if phase == "0" else frame_loss_weight) * f_loss
    if phase in ("A", "B"):
        if phase == "A":
            memory = jax.lax.stop_gradient(memory)
        tokens = batch["tokens"]
        logits = model.decode_train(memory, decoder_inputs(tokens), key=dec_key)
        t_loss, t_metrics = token_loss(logits, tokens, batch["token_mask"], label_smoothing)
        metrics.update(t_metrics)
        total = total + t_loss
    metrics["loss"] = total
    return total, metrics
