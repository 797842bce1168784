"""Core ML: jax.export (StableHLO) -> stablehlo_coreml -> coremltools ML program (.mlpackage).

coremltools cannot read the TF graph of current jax2tf (one XlaCallModule op), so Core ML is
converted from StableHLO instead. One .mlpackage per signature (`encode.mlpackage`,
`decode_step.mlpackage`, `frame_probs.mlpackage`), each with a single `main` function, the
contract's feature names, shapes and dtypes, and the contract in its metadata. Target iOS 18 /
macOS 15 (the converter's minimum). Compute precision is float32 by default (the graph the
parity test checks); float16 (front end still float32) halves the weights and lets the Neural
Engine run the transformer, but its numerics cannot be checked on Linux, where Core ML
prediction does not run.
"""

from __future__ import annotations

import json
from pathlib import Path

import coremltools as ct
from jax._src.interpreters import mlir as jax_mlir
from jax._src.lib.mlir import ir
from stablehlo_coreml import build_pass_pipeline
from stablehlo_coreml import convert as hlo_to_mil

from export import stablehlo
from export.contract import Contract, Signature

MINIMUM_TARGET = ct.target.iOS18


class _FrontEndInFloat32:
    """FP16ComputePrecision op selector that keeps the log-mel front end in float32.

    The front end is everything upstream of the graph's `log` (the only one: the rest of the
    model uses rsqrt, gelu and softmax): DFT conv, squares, mel matmul, log. Its powers reach
    ~1e4 and its floor is 1e-4, so it runs in float32 even in a float16 model; the
    transformer layers after it are what fp16 (and the Neural Engine) speed up.
    """

    def __init__(self) -> None:
        self._upstream: dict[int, set[int]] = {}

    def __call__(self, op) -> bool:
        block = op.enclosing_block
        if id(block) not in self._upstream:  # first call, before any cast is inserted
            self._upstream[id(block)] = self._ancestors_of_log(block)
        return id(op) not in self._upstream[id(block)]

    @staticmethod
    def _ancestors_of_log(block) -> set[int]:
        logs = [op for op in block.operations if op.op_type == "log"]
        seen: set[int] = set()
        stack = list(logs)
        while stack:
            op = stack.pop()
            if id(op) in seen:
                continue
            seen.add(id(op))
            for var in op.inputs.values():
                for v in var if isinstance(var, list | tuple) else (var,):
                    if v.op is not None:
                        stack.append(v.op)
        return seen


def compute_precision(precision: str):
    """float32, or float16 with the front end kept in float32."""
    if precision == "float32":
        return ct.precision.FLOAT32
    if precision == "float16":
        return ct.transform.FP16ComputePrecision(op_selector=_FrontEndInFloat32())
    raise ValueError(f"unknown Core ML precision {precision!r}")


def convert(
    functions: stablehlo.ExportFunctions, name: str, precision: str = "float32"
) -> ct.models.MLModel:
    """The Core ML model of one signature, with named outputs and contract metadata."""
    exported = stablehlo.export(functions, name)
    signature = functions.contract.signature(name)
    module = ir.Module.parse(exported.mlir_module(), context=jax_mlir.make_ir_context())
    program = hlo_to_mil(module, minimum_deployment_target=MINIMUM_TARGET)
    main = program.functions["main"]
    inputs = list(main.inputs)
    if inputs != [t.name for t in signature.inputs]:
        raise RuntimeError(f"{name}: Core ML inputs {inputs} differ from the contract")
    if len(main.outputs) != len(signature.outputs):
        raise RuntimeError(f"{name}: {len(main.outputs)} outputs, contract has "
                           f"{len(signature.outputs)}")
    for var, spec in zip(main.outputs, signature.outputs, strict=True):
        var.set_name(spec.name)  # stablehlo_coreml leaves op names such as "add_45"
    model = ct.convert(
        program,
        source="milinternal",
        minimum_deployment_target=MINIMUM_TARGET,
        pass_pipeline=build_pass_pipeline(),
        compute_precision=compute_precision(precision),
        skip_model_load=True,  # no Core ML runtime on Linux
    )
    describe(model, signature, functions.contract, precision)
    return model


def describe(
    model: ct.models.MLModel, signature: Signature, contract: Contract, precision: str
) -> None:
    model.short_description = f"HarmonyNet {signature.name}: {signature.doc}"
    model.author = "HarmonyNet-JAX"
    model.license = "Apache-2.0"
    for spec in signature.inputs:
        model.input_description[spec.name] = spec.doc
    for spec in signature.outputs:
        model.output_description[spec.name] = spec.doc
    meta = model.user_defined_metadata
    meta["harmonynet.signature"] = signature.name
    meta["harmonynet.compute_precision"] = precision
    meta["harmonynet.contract"] = json.dumps(contract.to_json()["sizes"], sort_keys=True)


def save(model: ct.models.MLModel, path: Path) -> Path:
    model.save(str(path))
    return path


def load_spec(path: str | Path):
    """The protobuf spec of a saved .mlpackage (readable on Linux, unlike prediction)."""
    return ct.utils.load_spec(str(path))


def spec_io(spec) -> dict[str, dict[str, tuple[tuple[int, ...], str]]]:
    """{"inputs"|"outputs": {name: (shape, dtype)}} of a model spec, dtypes as numpy names."""
    types = ct.proto.FeatureTypes_pb2.ArrayFeatureType
    names = {types.FLOAT32: "float32", types.FLOAT16: "float16", types.INT32: "int32"}

    def io(features):
        return {
            f.name: (tuple(f.type.multiArrayType.shape), names[f.type.multiArrayType.dataType])
            for f in features
        }

    return {"inputs": io(spec.description.input), "outputs": io(spec.description.output)}
