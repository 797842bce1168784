"""The exported functions in JAX (`encode`, `decode_step`, `frame_probs`), and their
StableHLO (`jax.export`) form.

Both targets start here: TFLite wraps these functions with jax2tf, Core ML converts their
StableHLO. The functions close over the weights (they become graph constants) and follow the
contract in `export.contract`: batch 1, static shapes, per-layer self-attention caches stacked
into one [N, *layer cache] tensor each for keys and values (the model's own per-layer
layout, so a step needs no transposes). `decode_step` recomputes the
cross-attention keys/values from `memory` every step (`precompute_cross=False` in the model),
so the step has only two state tensors besides the memory. `frame_probs` is the frame head
with the sigmoid the desktop frame decoder applies (harmonynet_jax.inference).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import export as jax_export

from export.contract import FRAME_OUTPUTS, Contract, Signature
from harmonynet_jax.model import HarmonyNet, KVCache


def float32_model(model: HarmonyNet) -> HarmonyNet:
    """The same weights with compute_dtype float32 (mobile runtimes have no bfloat16 path).

    The config is a static field, so the model is rebuilt around the existing leaves.
    """
    config = dataclasses.replace(model.config, compute_dtype="float32", dropout=0.0)
    if config == model.config:
        return model
    skeleton = jax.eval_shape(lambda: HarmonyNet(config, key=jax.random.key(0)))
    return jax.tree.unflatten(jax.tree.structure(skeleton), jax.tree.leaves(model))


class ExportFunctions(eqx.Module):
    """Every contract signature as a method of the same name whose parameters are the
    signature's inputs and whose outputs come in the signature's order.

    A pytree (the weights are its leaves), so jitted callers can pass it as an argument.
    """

    model: HarmonyNet
    contract: Contract = eqx.field(static=True)

    @classmethod
    def from_model(cls, model: HarmonyNet) -> ExportFunctions:
        model = float32_model(model)
        return cls(model, Contract.from_config(model.config))

    def encode(self, audio: jax.Array) -> jax.Array:
        return self.model.encode(audio.astype(jnp.float32))

    def decode_step(
        self,
        token: jax.Array,
        memory: jax.Array,
        k_cache: jax.Array,
        v_cache: jax.Array,
        position: jax.Array,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        c = self.contract
        layer = (1, *c.layer_cache_shape)
        cache = KVCache(
            tuple(k_cache[i].reshape(layer) for i in range(c.dec_layers)),
            tuple(v_cache[i].reshape(layer) for i in range(c.dec_layers)),
            None,
            None,
        )
        logits, cache = self.model.decode_step(token, memory, cache, position)
        return (
            logits,
            jnp.concatenate(cache.self_k, axis=0),
            jnp.concatenate(cache.self_v, axis=0),
        )

    def frame_probs(self, memory: jax.Array) -> tuple[jax.Array, ...]:
        logits = self.model.frame_logits(memory.astype(jnp.float32))
        return tuple(jax.nn.sigmoid(logits[k].astype(jnp.float32)) for k in FRAME_OUTPUTS)

    def function(self, name: str) -> tuple[Callable, Signature]:
        """A plain closure over the weights (they become graph constants) whose parameter
        names are the contract's input names: jax.export and Core ML keep them."""
        signature = self.contract.signature(name)
        method = getattr(self, name)
        parameters = inspect.signature(method)
        if list(parameters.parameters) != [t.name for t in signature.inputs]:
            raise RuntimeError(f"{name}{parameters} does not take the contract's inputs")

        def fn(*args: jax.Array):
            return method(*args)

        fn.__name__ = name
        fn.__signature__ = parameters  # the names jax.export records
        return fn, signature


def abstract_inputs(signature: Signature) -> list[jax.ShapeDtypeStruct]:
    return [jax.ShapeDtypeStruct(t.shape, jnp.dtype(t.dtype)) for t in signature.inputs]


def export(functions: ExportFunctions, name: str) -> jax_export.Exported:
    """`jax.export` of one signature; argument names come from the Python parameter names,
    which equal the contract's input names (Core ML keeps them as feature names)."""
    fn, signature = functions.function(name)
    exported = jax_export.export(jax.jit(fn), platforms=("cpu",))(*abstract_inputs(signature))
    names = [t.name for t in signature.inputs]
    text = exported.mlir_module()
    for n in names:
        if f'loc("{n}")' not in text:
            raise RuntimeError(f"StableHLO of {name} lost the input name {n!r}")
    return exported
