"""Compact inference weights (what `models/` ships): a one-line JSON header with the model
config, then the model's arrays in float16 via equinox serialisation. Loading restores float32
master weights. `load_weights` also takes a training run folder (its newest checkpoint)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

from harmonynet_jax.config import FrontendConfig, ModelConfig
from harmonynet_jax.model import HarmonyNet

MAGIC = b"HARMONYNET-WEIGHTS 1\n"


class WeightsError(RuntimeError):
    pass


def model_config_from_dict(d: dict) -> ModelConfig:
    d = dict(d)
    d["frontend"] = FrontendConfig(**d["frontend"])
    return ModelConfig(**d)


def _cast(model: HarmonyNet, dtype) -> HarmonyNet:
    return jax.tree.map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, model)


def save_weights(path: str | Path, model: HarmonyNet, dtype: str = "float16",
                 info: dict | None = None) -> Path:
    from harmonynet_jax.train.checkpoint import config_dict

    path = Path(path)
    header = {"model_config": config_dict(model.config), "dtype": dtype, "info": info or {}}
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, _cast(model, jnp.dtype(dtype)))
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + buf.getvalue())
    tmp.replace(path)
    return path


def read_header(path: str | Path) -> dict:
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise WeightsError(f"{path} is not a HarmonyNet weights file")
        return json.loads(f.readline())


def load_weights(path: str | Path, like: HarmonyNet | None = None) -> HarmonyNet:
    """The model in `path` (weights file or run folder); with `like`, its config must match."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"model weights not found: {path}")
    if path.is_dir():
        from harmonynet_jax.train.checkpoint import Checkpointer

        ckpt_dir = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        ckpt = Checkpointer(ckpt_dir)
        if like is None:
            like = HarmonyNet(model_config_from_dict(ckpt.meta()["model_config"]),
                              key=jax.random.key(0))
        return ckpt.restore_model(like)
    header = read_header(path)
    config = model_config_from_dict(header["model_config"])
    if like is not None and like.config != config:
        raise WeightsError(f"{path} holds a model of another config: {config} != {like.config}")
    stored = jnp.dtype(header["dtype"])

    def blank(x):
        """Zeros of the stored dtype, for the deserialiser to fill."""
        if not isinstance(x, jax.ShapeDtypeStruct):
            return x
        dtype = stored if jnp.issubdtype(x.dtype, jnp.inexact) else x.dtype
        return jnp.zeros(x.shape, dtype)

    skeleton = jax.tree.map(blank, eqx.filter_eval_shape(HarmonyNet, config, key=jax.random.key(0)))
    with open(path, "rb") as f:
        f.read(len(MAGIC))
        f.readline()
        model = eqx.tree_deserialise_leaves(f, skeleton)
    return _cast(model, jnp.float32)
