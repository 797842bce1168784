"""Training-data rendering throughput: hours of audio per wall-clock minute.

Builds a fresh dataset with N worker processes (music21 extractions come from the per-user
cache unless --cold-cache), then profiles the stages of a few items in one process (with a
cold corpus cache) to show where the time goes.

    PYTHONPATH=. python benchmarks/synth.py [--hours 0.25] [--workers 2] [--seed 0] [--cold-cache]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from harmonynet_jax.config import SynthConfig
from harmonynet_jax.synth.build import build
from harmonynet_jax.synth.codec import decode, encode
from harmonynet_jax.synth.effects import apply_effects, sample_effects
from harmonynet_jax.synth.humanize import humanize
from harmonynet_jax.synth.item import _music, choose_preset, sample_fluid
from harmonynet_jax.synth.performance import sanitize
from harmonynet_jax.synth.plan import plan_items
from harmonynet_jax.synth.render import render_audio
from harmonynet_jax.synth.sources import trim


def throughput(hours: float, workers: int, seed: int) -> None:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as tmp:
        result = build(Path(tmp), hours, seed, workers=workers, progress=False)
        audio_h = result.summary["hours"]
        minutes = result.seconds / 60
        print(f"build: {result.rendered} items, {audio_h:.3f} h audio, "
              f"{result.summary['notes']} notes in {result.seconds:.1f} s wall "
              f"with {workers} workers ({os.cpu_count()} cores visible, "
              f"load average {load:.1f} before / {os.getloadavg()[0]:.1f} after)")
        print(f"  => {audio_h / minutes:.3f} h of audio per wall-minute "
              f"({audio_h * 3600 / result.seconds:.1f}x real time; "
              f"{60 / (audio_h / minutes):.0f} wall-minutes per 60 h)")


def profile(items: int, seed: int) -> None:
    cfg = SynthConfig()
    stages: dict[str, float] = defaultdict(float)
    audio_s = 0.0
    with tempfile.TemporaryDirectory(prefix="synth-prof-") as tmp:
        for plan in plan_items(cfg, seed, hours=1.0)[:items]:
            rng = np.random.default_rng([plan.seed, plan.index, 1])
            t = time.perf_counter()
            plan, score, _ = _music(plan, rng, cfg, Path(tmp) / "cache")  # cold cache
            stages["music (corpus parse / texture)"] += time.perf_counter() - t
            t = time.perf_counter()
            perf, _ = humanize(score, rng, cfg)
            perf = sanitize(trim(perf, plan.target_seconds))
            stages["humanize"] += time.perf_counter() - t
            preset, fluid = choose_preset(rng, cfg), sample_fluid(rng, cfg, plan.sample_rate)
            effects = sample_effects(rng, cfg)
            t = time.perf_counter()
            audio = render_audio(perf, Path(tmp) / "x.midi", preset, fluid,
                                 tail_seconds=cfg.tail_seconds)
            stages["fluidsynth"] += time.perf_counter() - t
            t = time.perf_counter()
            audio = apply_effects(audio, fluid.sample_rate, effects)
            stages["effects"] += time.perf_counter() - t
            t = time.perf_counter()
            out = Path(tmp) / f"x.{plan.audio_ext}"
            encode(audio, fluid.sample_rate, out, out_rate=plan.sample_rate,
                   channels=plan.channels)
            decoded, rate = decode(out)
            stages["encode + duration check"] += time.perf_counter() - t
            audio_s += len(decoded) / rate
    total = sum(stages.values())
    print(f"profile: {items} items, {audio_s:.0f} s audio, {total:.1f} s in one process "
          f"({audio_s / total:.1f}x real time per core)")
    for name, sec in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {name:32s} {sec:6.2f} s  {100 * sec / total:4.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=0.25)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile-items", type=int, default=6)
    parser.add_argument("--cold-cache", action="store_true",
                        help="parse the music21 corpus afresh (first build on a machine)")
    args = parser.parse_args()
    if args.cold_cache:  # workers inherit the environment
        os.environ["HARMONYNET_CACHE"] = tempfile.mkdtemp(prefix="synth-cache-")
    throughput(args.hours, args.workers, args.seed)
    if args.profile_items:
        profile(args.profile_items, args.seed + 1)


if __name__ == "__main__":
    main()
