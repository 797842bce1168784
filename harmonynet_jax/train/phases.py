"""The three phases as one optimiser shape: `optax.multi_transform` over the model's labelled
subtrees, frozen parts mapped to `set_to_zero` (no state, no update)."""

from __future__ import annotations

import equinox as eqx
import optax

from harmonynet_jax.config import TrainConfig
from harmonynet_jax.model import LABELS, HarmonyNet, param_labels

PHASES = ("0", "A", "B")

# Which labelled subtrees learn, and at which share of the learning rate.
_RATES: dict[str, dict[str, str]] = {
    "0": {"encoder": "full", "frame_head": "full"},
    "A": {"decoder": "full"},
    "B": {"encoder": "encoder", "frame_head": "encoder", "decoder": "full"},
}


def check_phase(phase: str) -> str:
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; choose from {', '.join(PHASES)}")
    return phase


def trainable(phase: str) -> tuple[str, ...]:
    return tuple(_RATES[check_phase(phase)])


def schedule(cfg: TrainConfig, scale: float = 1.0) -> optax.Schedule:
    peak = cfg.learning_rate * scale
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=peak,
        warmup_steps=max(1, cfg.warmup_steps),
        decay_steps=max(cfg.steps, cfg.warmup_steps + 1),
        end_value=peak * cfg.final_lr_ratio,
    )


def make_optimizer(cfg: TrainConfig, model: HarmonyNet) -> optax.GradientTransformation:
    """Global-norm clipping, then AdamW per labelled subtree (or zero for frozen ones)."""
    rates = _RATES[check_phase(cfg.phase)]

    def adamw(scale: float) -> optax.GradientTransformation:
        return optax.adamw(schedule(cfg, scale), b2=0.98, weight_decay=cfg.weight_decay)

    by_rate = {"full": adamw(1.0), "encoder": adamw(cfg.encoder_lr_ratio)}
    transforms = {label: by_rate[rates[label]] if label in rates else optax.set_to_zero()
                  for label in LABELS}
    return optax.chain(
        optax.clip_by_global_norm(cfg.grad_clip),
        optax.multi_transform(transforms, param_labels(model)),
    )


def params_of(model: HarmonyNet):
    return eqx.filter(model, eqx.is_inexact_array)
