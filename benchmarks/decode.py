"""Greedy-decoding speed: time per decoded token at short vs long sequences, and tokens/s at
batch 1 vs 16, for a preset with random weights (speed does not depend on the weights).

Every run decodes exactly `length` positions (stop_when_done=False), with the grammar mask,
after a warm-up call that compiles; the median of `--repeats` timed calls is reported, as wall
time and as process CPU time (steadier on a shared machine). Paths: "cached" (the default KV
cache, doubling from 64 slots), "flat" (one cache of `length` slots: every step attends over
all of them), "uncached" (recompute the whole prefix each step; the quadratic reference).

    PYTHONPATH=. python benchmarks/decode.py --preset small
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import equinox as eqx
import jax

from harmonynet_jax.config import ModelConfig
from harmonynet_jax.decoding import greedy_decode
from harmonynet_jax.model import HarmonyNet, count_params

# name -> greedy_decode options
PATHS = {
    "cached": {"use_cache": True, "cache_bucket": 64},  # the default: cache doubles from 64
    "flat": {"use_cache": True, "cache_bucket": None},  # one cache of `length` slots
    "uncached": {"use_cache": False},  # recompute the prefix every step
}


def time_decode(
    model: HarmonyNet, memory: jax.Array, length: int, options: dict, repeats: int
) -> tuple[float, float]:
    """Median (wall, process CPU) seconds of one greedy decode of `length` positions, compile
    excluded. CPU time (all threads) is the steadier figure on a shared machine."""

    def run() -> None:
        greedy_decode(
            model, memory, max_len=length, stop_when_done=False, **options
        ).block_until_ready()

    run()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small", choices=["tiny", "small", "base"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--paths", nargs="+", default=["cached", "flat"], choices=list(PATHS),
        help="decoding variants (uncached is slow: its batch-1 run at 512 takes ~30 s)",
    )
    args = parser.parse_args(argv)

    config = ModelConfig.preset(args.preset)
    model = HarmonyNet(config, key=jax.random.key(0))
    encode = eqx.filter_jit(lambda m, audio: m.encode(audio))
    print(
        f"preset {args.preset}: {count_params(model):,} params, D{config.d_model} "
        f"enc{config.enc_layers}/dec{config.dec_layers}, {config.compute_dtype}, "
        f"T={config.frames} frames; jax {jax.__version__} on "
        f"{jax.devices()[0].platform}, {os.cpu_count()} cpus, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    header = (
        f"{'path':<10}{'batch':>6}{'tokens':>8}{'ms/step':>10}{'ms/token':>10}{'tokens/s':>10}"
        f"{'cpu ms/step':>13}"
    )
    print(header)
    print("-" * len(header))
    per_token: dict[tuple[str, int, int], float] = {}
    per_token_cpu: dict[tuple[str, int, int], float] = {}
    batches = {n: args.batches[:1] if n == "uncached" else args.batches for n in args.paths}
    for name in args.paths:
        for batch in batches[name]:
            audio = 0.1 * jax.random.normal(jax.random.key(batch), (batch, config.segment_samples))
            memory = encode(model, audio)
            for length in args.lengths:
                seconds, cpu = time_decode(model, memory, length, PATHS[name], args.repeats)
                step_ms = 1e3 * seconds / length
                per_token[name, batch, length] = step_ms / batch
                per_token_cpu[name, batch, length] = 1e3 * cpu / length / batch
                print(
                    f"{name:<10}{batch:>6}{length:>8}{step_ms:>10.2f}{step_ms / batch:>10.3f}"
                    f"{batch * length / seconds:>10.0f}{1e3 * cpu / length:>13.2f}"
                )
    short, long = min(args.lengths), max(args.lengths)
    for name in args.paths:
        for batch in batches[name]:
            ratio = per_token[name, batch, long] / per_token[name, batch, short]
            ratio_cpu = per_token_cpu[name, batch, long] / per_token_cpu[name, batch, short]
            print(
                f"{name} batch {batch}: time per token at {long} / at {short} tokens = "
                f"{ratio:.2f} (cpu time {ratio_cpu:.2f})"
            )
    if len(args.batches) > 1 and "cached" in args.paths:
        lo, hi = min(args.batches), max(args.batches)
        for length in args.lengths:
            gain = per_token["cached", lo, length] / per_token["cached", hi, length]
            gain_cpu = per_token_cpu["cached", lo, length] / per_token_cpu["cached", hi, length]
            print(
                f"cached, {length} tokens: batch {hi} has {gain:.1f}x the tokens/s of batch {lo}"
                f" ({gain_cpu:.1f}x per cpu second)"
            )


if __name__ == "__main__":
    main()
