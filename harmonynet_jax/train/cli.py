"""Command line of training: presets plus overrides, clear messages instead of traces."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
from pathlib import Path

from harmonynet_jax.config import ModelConfig, TrainConfig


def install_stop_handlers() -> None:
    """SIGTERM (a pod scheduler's preemption notice, `kill`, `timeout`) and SIGINT both make the
    loop checkpoint the step it reached and stop; SIGINT works even where the shell started us
    with it ignored (`nohup cmd &`)."""
    from harmonynet_jax.train.loop import request_stop

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="train.py", description=__doc__)
    ap.add_argument("--data", type=Path, required=True, help="MAESTRO-layout folder")
    ap.add_argument("--phase", choices=["0", "A", "B"], required=True,
                    help="0: encoder + frame head; A: decoder, encoder frozen; B: joint")
    ap.add_argument("--config", default="cpu", help="training preset: cpu, pod or test")
    ap.add_argument("--run-dir", type=Path, help="checkpoints and metrics (default runs/<phase>)")
    ap.add_argument("--init-from", type=Path,
                    help="weights file or run folder of an earlier phase to start from")
    ap.add_argument("--distributed", action="store_true",
                    help="call jax.distributed.initialize() (multi-host pods)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--stop-after", type=int, help="leave after this many steps (resumable)")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name in ("model", "batch_size", "steps", "learning_rate", "warmup_steps",
                 "encoder_lr_ratio", "max_tokens", "seed", "eval_every", "checkpoint_every",
                 "log_every", "fsdp", "loader_threads", "onset_pos_weight"):
        ap.add_argument("--" + name.replace("_", "-"), type=type(fields[name].default),
                        default=None)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    install_stop_handlers()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # orbax reports through absl, tracebacks included; its failures reach us as exceptions.
    logging.getLogger("absl").setLevel(logging.CRITICAL)
    from harmonynet_jax.data import LoaderError
    from harmonynet_jax.train.loop import TrainingError, train

    try:
        cfg = TrainConfig.preset(args.config)
        overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                     if f.name != "phase" and getattr(args, f.name, None) is not None}
        cfg = dataclasses.replace(cfg, phase=args.phase, **overrides)
        model_config = ModelConfig.preset(cfg.model)
        run_dir = args.run_dir or Path("runs") / f"phase{cfg.phase}"
        last = train(cfg, args.data, run_dir, model_config=model_config,
                     init_from=args.init_from, distributed=args.distributed,
                     progress=not args.no_progress, stop_after=args.stop_after)
    except (TrainingError, LoaderError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # A failed orbax save can leave its writer threads behind, which then dump asyncio
        # tracebacks during interpreter shutdown; nothing is left to clean up, so leave now.
        os._exit(2)
    except KeyboardInterrupt as stop:
        print("interrupted; the last checkpoint holds the progress", file=sys.stderr)
        sys.exit(128 + getattr(stop, "signum", signal.SIGINT))
    if last:
        print("last: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(last.items())))
