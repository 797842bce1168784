"""Training throughput: examples/s of each phase for a model preset on this machine, and the
step time with 1 vs N forced host devices (the sharded path), side by side in one run.

    python benchmarks/train.py [--model small] [--batch-size 8] [--steps 10] [--devices 1,4]

Batches are real segments of the bundled fixture (tests/data/fixture_maestro) via the loader,
so the loader's cost is included as in training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "data" / "fixture_maestro"


def measure(model_name: str, phase: str, batch_size: int, steps: int, fsdp: int) -> dict:
    import jax

    from harmonynet_jax.config import ModelConfig, TrainConfig
    from harmonynet_jax.data import Stream
    from harmonynet_jax.model import HarmonyNet
    from harmonynet_jax.train import sharding
    from harmonynet_jax.train.loop import make_step
    from harmonynet_jax.train.phases import make_optimizer, params_of

    cfg = dataclasses.replace(TrainConfig.preset("cpu"), phase=phase, model=model_name,
                              batch_size=batch_size, fsdp=fsdp)
    mc = ModelConfig.preset(model_name)
    mesh = sharding.make_mesh(fsdp)
    model = HarmonyNet(mc, key=jax.random.key(0))
    optimizer = make_optimizer(cfg, model)
    opt_state = optimizer.init(params_of(model))
    model, opt_state = sharding.shard_model(model, mesh), sharding.shard_model(opt_state, mesh)
    step = make_step(optimizer, cfg)
    stream = Stream(FIXTURE, "train", mc.segment_samples, batch_size, 0,
                    max_tokens=cfg.max_tokens, frame_hop=mc.frontend.hop)
    batch = sharding.global_batch(next(stream), mesh)
    t0 = time.perf_counter()
    model, opt_state, m = step(model, opt_state, batch, jax.random.key(0))
    jax.block_until_ready(m["loss"])
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(steps):
        batch = sharding.global_batch(next(stream), mesh)
        model, opt_state, m = step(model, opt_state, batch, jax.random.key(i + 1))
    jax.block_until_ready(m["loss"])
    elapsed = time.perf_counter() - t0
    stream.close()
    seconds = mc.segment_samples / 16_000
    return {
        "model": model_name, "phase": phase, "batch": batch_size, "devices": jax.device_count(),
        "fsdp": fsdp, "compile_s": compile_s, "step_s": elapsed / steps,
        "examples_per_s": steps * batch_size / elapsed,
        "audio_h_per_h": steps * batch_size * seconds / elapsed,
    }


def in_subprocess(devices: int, *args: str) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="small")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--phases", default="0,A,B")
    ap.add_argument("--devices", default="1,4")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--phase", default="B", help=argparse.SUPPRESS)
    ap.add_argument("--fsdp", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.model, args.phase, args.batch_size, args.steps,
                                 args.fsdp)))
        return

    common = ["--model", args.model, "--batch-size", str(args.batch_size),
              "--steps", str(args.steps)]
    rows = [in_subprocess(1, *common, "--phase", p) for p in args.phases.split(",")]
    for n in (int(d) for d in args.devices.split(",") if int(d) > 1):
        rows.append(in_subprocess(n, *common, "--phase", "B"))
    print(f"{'model':6} {'phase':5} {'batch':>5} {'dev':>3} {'compile s':>9} {'step s':>7} "
          f"{'ex/s':>6} {'audio h/h':>9}")
    for r in rows:
        print(f"{r['model']:6} {r['phase']:5} {r['batch']:5d} {r['devices']:3d} "
              f"{r['compile_s']:9.1f} {r['step_s']:7.3f} {r['examples_per_s']:6.2f} "
              f"{r['audio_h_per_h']:9.1f}")
    base = next(r for r in rows if r["phase"] == "B" and r["devices"] == 1)
    for r in rows:
        if r["devices"] > 1:
            print(f"step time {r['devices']} devices / 1 device (phase B): "
                  f"{r['step_s'] / base['step_s']:.2f}x")


if __name__ == "__main__":
    main()
