"""CLI: `python -m export --checkpoint PATH --out DIR` (see export.pipeline, docs/mobile.md)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from harmonynet_jax.config import ExportConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = ExportConfig()
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="weights file (harmonynet_jax.weights.save_weights) or training run folder")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--variants", default=",".join(d.tflite_variants),
                   help="TFLite weight variants, comma-separated from fp32,fp16,int8")
    p.add_argument("--no-coreml", action="store_true", help="skip the Core ML packages")
    p.add_argument("--coreml-precision", default=d.coreml_precision, choices=["float32", "float16"])
    p.add_argument("--no-saved-model", action="store_true", help="do not keep the SavedModel")
    p.add_argument("--parity-clips", type=int, default=d.parity_clips,
                   help="fixture clips for the parity check (0: skip it)")
    p.add_argument("--parity-seconds", type=float, default=d.parity_seconds)
    p.add_argument("--parity-audio", type=Path, nargs="*", default=None,
                   help="audio files for the parity check instead of the fixture clips")
    p.add_argument("--keep-unmatched", action="store_true",
                   help="keep fp16/int8 files that transcribe differently from the JAX model "
                        "(with the decoder the weights recommend)")
    p.add_argument("--threads", type=int, default=d.num_threads, help="TFLite threads (parity)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = _config(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from export.pipeline import run

    manifest = run(args.checkpoint, args.out, config, args.parity_audio)
    fp32 = manifest.get("parity", {}).get("fp32")
    if fp32 is not None and not fp32["passed"]:
        print("error: the fp32 TFLite model does not match the JAX model", file=sys.stderr)
        return 1
    print(f"manifest: {args.out / 'manifest.json'}")
    return 0


def _config(args: argparse.Namespace) -> ExportConfig:
    return replace(
        ExportConfig(),
        tflite_variants=tuple(v for v in args.variants.split(",") if v),
        coreml=not args.no_coreml,
        coreml_precision=args.coreml_precision,
        saved_model=not args.no_saved_model,
        parity_clips=len(args.parity_audio) if args.parity_audio else args.parity_clips,
        parity_seconds=args.parity_seconds,
        num_threads=args.threads,
        keep_unmatched=args.keep_unmatched,
    )


if __name__ == "__main__":
    sys.exit(main())
