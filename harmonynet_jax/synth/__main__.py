"""CLI: python -m harmonynet_jax.synth --out DIR --hours H --seed S [--workers N]."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..config import SynthConfig
from .build import build


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m harmonynet_jax.synth",
        description="Render a MAESTRO-layout piano dataset from MIDI with FluidSynth.")
    p.add_argument("--out", type=Path, required=True, help="dataset folder (created/resumed)")
    p.add_argument("--hours", type=float, required=True, help="audio to plan, in hours")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--min-seconds", type=float, default=None,
                   help="shortest item, audio seconds (default 20)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="longest item, audio seconds (default 60)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    cfg = SynthConfig()
    overrides = {k: v for k, v in (("min_seconds", args.min_seconds),
                                   ("max_seconds", args.max_seconds)) if v is not None}
    cfg = dataclasses.replace(cfg, **overrides)
    result = build(args.out, args.hours, args.seed, cfg, args.workers, not args.no_progress)
    s = result.summary
    print(f"planned {result.planned}, rendered {result.rendered}, skipped {result.skipped}, "
          f"failed {len(result.failed)} in {result.seconds:.1f} s")
    print(f"dataset: {s['items']} items, {s['hours']:.3f} h, {s['notes']} notes; "
          + ", ".join(f"{k} {v['items']} ({v['hours']:.3f} h)" for k, v in s["splits"].items()))
    print(f"index: {args.out}/maestro-v3.0.0.csv (.json); summary: {args.out}/summary.png")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
