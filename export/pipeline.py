"""`python -m export`: weights -> TFLite variants + Core ML packages + vocab.json + manifest,
then parity of every TFLite variant with the JAX path on real clips.

Output folder:
    vocab.json                 token names and grammar constants (tokens.VOCAB)
    harmonynet_{fp32,fp16,int8}.tflite   every signature (encode, decode_step, frame_probs)
    encode.mlpackage, decode_step.mlpackage, frame_probs.mlpackage
    saved_model/               the jax2tf SavedModel the TFLite files come from
    manifest.json              contract, recommended decoder and its settings, files and sizes,
                               parity results, tool versions
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from export.contract import Contract, Decoding, vocab_json
from export.stablehlo import ExportFunctions
from harmonynet_jax.config import ExportConfig, InferenceConfig
from harmonynet_jax.inference import tuned_config
from harmonynet_jax.model import HarmonyNet
from harmonynet_jax.weights import load_weights

TOOLS = ("jax", "tensorflow-cpu", "tensorflow", "ai-edge-litert", "coremltools", "stablehlo-coreml")


def tflite_name(variant: str) -> str:
    return f"harmonynet_{variant}.tflite"


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _versions() -> dict[str, str]:
    out = {}
    for name in TOOLS:  # tensorflow-cpu on Linux, tensorflow on macOS
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def _remove_previous(out: Path, contract: Contract) -> None:
    """Deletes what an earlier export wrote here (only our own file names), so a re-export
    with fewer variants leaves no stale file beside the new manifest."""
    names = [tflite_name(v) for v in ("fp32", "fp16", "int8")]
    names += [f"{s.name}.mlpackage" for s in contract.signatures] + ["manifest.json"]
    for name in names:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _export_tflite(
    functions: ExportFunctions,
    out: Path,
    config: ExportConfig,
    files: dict[str, str],
    timings: dict[str, float],
    log,
) -> None:
    """SavedModel (kept or temporary), then one .tflite file per weight variant."""
    from export import tflite  # TensorFlow loads only when exporting TFLite

    t0 = time.perf_counter()
    keep = config.saved_model
    saved = out / "saved_model" if keep else Path(tempfile.mkdtemp(prefix="harmonynet_sm_"))
    if saved.exists():
        shutil.rmtree(saved)
    try:
        tflite.save_saved_model(functions, saved)
        timings["saved_model_s"] = time.perf_counter() - t0
        if keep:
            files["saved_model"] = "saved_model"
        for variant in config.tflite_variants:
            t0 = time.perf_counter()
            path = out / tflite_name(variant)
            path.write_bytes(tflite.convert(saved, variant))
            timings[f"tflite_{variant}_s"] = time.perf_counter() - t0
            files[f"tflite_{variant}"] = path.name
            log(f"wrote {path} ({_size(path) / 1e6:.2f} MB)")
    finally:
        if not keep:
            shutil.rmtree(saved, ignore_errors=True)


def recommended_decoding(model: HarmonyNet, checkpoint: str | Path | None) -> Decoding:
    """The decoder and thresholds the weights file's header recommends (as the desktop
    transcriber reads them, `inference.tuned_config`), else InferenceConfig's defaults."""
    return Decoding.of(model, tuned_config(checkpoint, InferenceConfig()))


def export_model(
    model: HarmonyNet,
    out: Path,
    config: ExportConfig | None = None,
    log=print,
    decoding: Decoding | None = None,
) -> dict:
    """Writes every artifact of `model` into `out`; returns the manifest (without parity).

    decoding: what the manifest tells an app to run (default: InferenceConfig's defaults).
    """
    config = config or ExportConfig()
    decoding = decoding or recommended_decoding(model, None)
    out.mkdir(parents=True, exist_ok=True)
    functions = ExportFunctions.from_model(model)
    contract = functions.contract
    _remove_previous(out, contract)
    files: dict[str, str] = {}
    timings: dict[str, float] = {}

    (out / "vocab.json").write_text(json.dumps(vocab_json(), indent=1))
    files["vocab"] = "vocab.json"

    if config.tflite_variants or config.saved_model:
        _export_tflite(functions, out, config, files, timings, log)

    if config.coreml:
        from export import coreml

        for signature in contract.signatures:
            t0 = time.perf_counter()
            path = out / f"{signature.name}.mlpackage"
            coreml.save(coreml.convert(functions, signature.name, config.coreml_precision), path)
            timings[f"coreml_{signature.name}_s"] = time.perf_counter() - t0
            files[f"coreml_{signature.name}"] = path.name
            log(f"wrote {path} ({_size(path) / 1e6:.2f} MB)")

    manifest = {
        "model_config": asdict(model.config),
        "export_config": asdict(config),
        "contract": contract.to_json(),
        "decoding": decoding.to_json(),
        "files": files,
        "sizes_bytes": {key: _size(out / name) for key, name in files.items()},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "tools": _versions(),
    }
    _write_manifest(out, manifest)
    return manifest


def _write_manifest(out: Path, manifest: dict) -> None:
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


def transcribes_alike(report: dict, decoder: str) -> bool:
    """Whether a variant's parity `report` (parity.summary) gives the JAX model's notes with
    `decoder`: the file is only as good as the decoder the app will run on it."""
    if decoder == "frames":
        return bool(report["frame_notes_identical"] and report["frame_probs_within_tolerance"])
    return bool(report["tokens_identical"] and report["notes_identical"])


def check_parity(
    model: HarmonyNet,
    out: Path,
    manifest: dict,
    clips: list[tuple[str, object]],
    config: ExportConfig | None = None,
    log=print,
) -> dict:
    """Parity of every exported TFLite variant on `clips`, recorded in the manifest.

    A file "transcribes like the JAX model" when the manifest's recommended decoder gives the
    same notes: tokens and notes identical (token decoder), or frame-decoder notes identical
    and frame probabilities within the variant's parity.FRAME_TOLERANCE (frame decoder).
    fp32 `passed` = that, identical tokens whatever the decoder (the strict conversion check),
    and memory and frame probabilities within their fp32 tolerances. A reduced-precision file
    that transcribes differently is removed (`shipped: false`) unless config.keep_unmatched.
    """
    config = config or ExportConfig()
    from export import parity, tflite

    contract = Contract.from_config(model.config)
    decoding = Decoding(**manifest["decoding"])
    candidates = {
        v: tflite.TFLiteModel(out / tflite_name(v), contract, config.num_threads)
        for v in config.tflite_variants
    }
    results = parity.check_clips(model, candidates, clips, config.canonical, decoding)
    report = {v: parity.summary(rows, v) for v, rows in results.items()}
    for variant, r in report.items():
        same = transcribes_alike(r, decoding.decoder)
        if variant == "fp32":
            r["passed"] = (same and transcribes_alike(r, "tokens")
                           and r["frame_probs_within_tolerance"]
                           and r["encode_max_abs_diff"] <= config.encode_tolerance)
        r["shipped"] = same or variant == "fp32" or config.keep_unmatched
        log(
            f"parity {variant}: tokens identical {r['tokens_identical']}, notes identical "
            f"{r['notes_identical']}, token agreement {r['token_agreement']:.4f}, "
            f"encode max |diff| {r['encode_max_abs_diff']:.2e}, frame_probs max |diff| "
            f"{r['frame_probs_max_abs_diff']:.2e}, frame notes identical "
            f"{r['frame_notes_identical']}"
        )
        if not r["shipped"]:
            del candidates[variant]  # release the file before removing it
            (out / tflite_name(variant)).unlink()
            manifest["files"].pop(f"tflite_{variant}")
            manifest["sizes_bytes"].pop(f"tflite_{variant}")
            log(f"removed {tflite_name(variant)}: it transcribes differently from the JAX model "
                f"(keep it with --keep-unmatched)")
    manifest["parity"] = report
    _write_manifest(out, manifest)
    return report


def run(
    checkpoint: str | Path,
    out: str | Path,
    config: ExportConfig | None = None,
    audio: list[Path] | None = None,
    log=print,
) -> dict:
    """The whole CLI: load weights, export, check parity (unless config.parity_clips == 0)."""
    config = config or ExportConfig()
    from export import parity

    out = Path(out)
    model = load_weights(checkpoint)
    manifest = export_model(model, out, config, log, recommended_decoding(model, checkpoint))
    paths = audio if audio else parity.fixture_clips(config.parity_clips)
    if paths and config.parity_clips > 0 and config.tflite_variants:
        clips = [(p.name, parity.load_clip(p, config.parity_seconds)) for p in paths]
        check_parity(model, out, manifest, clips, config, log)
    return manifest
