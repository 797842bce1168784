"""TFLite through TensorFlow: jax2tf -> SavedModel (signatures `encode`, `decode_step`,
`frame_probs`) -> TFLiteConverter with TFLITE_BUILTINS only, in three weight variants; each
.tflite file holds every signature.

jax2tf's native serialization puts the StableHLO of each function in one XlaCallModule op; the
TFLite converter legalizes that op's StableHLO to builtin TFLite ops, so the .tflite files need
no Flex delegate. Signature names and tensor names come from `export.contract`.

Variants (weights only; activations and I/O stay float32):
- fp32: weights as trained (the parity reference);
- fp16: weights stored as float16, dequantized when the interpreter loads them (half size);
- int8: dynamic-range quantization (int8 weights, activations quantized on the fly per op).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from jax.experimental import jax2tf  # noqa: E402

from export.contract import (  # noqa: E402
    DECODE_STEP,
    ENCODE,
    FRAME_OUTPUTS,
    FRAME_PROBS,
    K_CACHE,
    K_CACHE_OUT,
    SIGNATURE_NAMES,
    V_CACHE,
    V_CACHE_OUT,
    Contract,
    Signature,
)
from export.stablehlo import ExportFunctions  # noqa: E402

VARIANTS = ("fp32", "fp16", "int8")


def _tensor_specs(signature: Signature) -> list[tf.TensorSpec]:
    return [tf.TensorSpec(t.shape, tf.as_dtype(t.dtype), name=t.name) for t in signature.inputs]


def _named_outputs(fn, names: list[str]):
    """fn's outputs as {name: tensor} (a factory, so the tf.function takes no extra kwargs)."""
    converted = jax2tf.convert(fn, with_gradient=False)

    def call(*args):
        outputs = converted(*args)
        outputs = outputs if isinstance(outputs, tuple | list) else (outputs,)
        return dict(zip(names, outputs, strict=True))

    return call


def build_module(functions: ExportFunctions) -> tf.Module:
    """A tf.Module with one tf.function per signature, each returning a dict keyed by the
    contract's output names."""
    module = tf.Module()
    for signature in functions.contract.signatures:
        fn, _ = functions.function(signature.name)
        call = _named_outputs(fn, [t.name for t in signature.outputs])
        spec = _tensor_specs(signature)
        setattr(module, signature.name, tf.function(call, input_signature=spec, autograph=False))
    return module


def save_saved_model(functions: ExportFunctions, path: Path) -> Path:
    module = build_module(functions)
    signatures = {
        s.name: getattr(module, s.name).get_concrete_function()
        for s in functions.contract.signatures
    }
    tf.saved_model.save(module, str(path), signatures=signatures)
    return path


def convert(saved_model: Path, variant: str) -> bytes:
    """The .tflite flatbuffer of one weight variant (builtin ops only)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown TFLite variant {variant!r}; choose from {VARIANTS}")
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model), signature_keys=list(SIGNATURE_NAMES)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant in ("fp16", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


class TFLiteModel:
    """The signature runners of a .tflite file, as an app drives them (batch 1).

    Implements the `export.decode_loop.StepModel` and `FrameModel` protocols.
    """

    def __init__(self, path: str | Path, contract: Contract, num_threads: int = 2):
        self.path = Path(path)
        self.contract = contract
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self.runners = {n: self.interpreter.get_signature_runner(n) for n in SIGNATURE_NAMES}

    def signature_io(self) -> dict[str, dict[str, dict[str, tuple[tuple[int, ...], str]]]]:
        """{signature: {"inputs"|"outputs": {name: (shape, dtype)}}} as the file declares."""
        out = {}
        for name, runner in self.runners.items():
            out[name] = {
                kind: {
                    key: (tuple(int(d) for d in det["shape"]), np.dtype(det["dtype"]).name)
                    for key, det in details.items()
                }
                for kind, details in (
                    ("inputs", runner.get_input_details()),
                    ("outputs", runner.get_output_details()),
                )
            }
        return out

    def encode(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, np.float32).reshape(1, self.contract.segment_samples)
        return self.runners[ENCODE](audio=audio)["memory"]

    def frame_probs(self, memory: np.ndarray) -> dict[str, np.ndarray]:
        out = self.runners[FRAME_PROBS](memory=np.asarray(memory, np.float32))
        return {k: out[k] for k in FRAME_OUTPUTS}

    def decode_step(
        self,
        token: int,
        memory: np.ndarray,
        k_cache: np.ndarray,
        v_cache: np.ndarray,
        position: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = self.runners[DECODE_STEP](
            token=np.array([token], np.int32),
            memory=memory,
            **{K_CACHE: k_cache, V_CACHE: v_cache},
            position=np.array([position], np.int32),
        )
        return out["logits"][0], out[K_CACHE_OUT], out[V_CACHE_OUT]
