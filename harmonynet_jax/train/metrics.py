"""Metrics as JSON lines (one object per logged step), TensorBoard when it is installed, and
the curves as a PNG: `python -m harmonynet_jax.train.metrics RUN_DIR`."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any


class MetricsLog:
    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tb = None
        try:
            from tensorboardX import SummaryWriter  # optional
        except ImportError:
            SummaryWriter = None
        if SummaryWriter is not None:
            self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def write(self, step: int, split: str, values: dict[str, Any]) -> None:
        row = {"step": step, "split": split, "time": round(time.time(), 3)}
        row.update({k: float(v) for k, v in values.items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(f"{split}/{key}", float(value), step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a killed run
    return rows


def plot(run_dir: Path, out: Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read(Path(run_dir) / "metrics.jsonl")
    if not rows:
        raise SystemExit(f"no metrics in {run_dir}")
    keys = sorted({k for r in rows for k in r} - {"step", "split", "time", "phase"})
    cols = 3
    rows_n = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(12, 3 * rows_n), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        for split in ("train", "validation"):
            pts = [(r["step"], r[key]) for r in rows if r.get("split") == split and key in r]
            if pts:
                marker = "." if split != "train" else None
                ax.plot(*zip(*pts, strict=True), label=split, marker=marker)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    out = out or Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="Plot a run's training curves to PNG.")
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("-o", "--out", type=Path)
    args = ap.parse_args()
    print(plot(args.run_dir, args.out))


if __name__ == "__main__":
    main()
