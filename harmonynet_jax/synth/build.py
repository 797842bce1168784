"""Build a dataset: plan, skip finished items, render the rest in parallel, write the index.

Resumable by construction: an item counts as finished when its record exists (written last,
atomically), and the MAESTRO index and summary are always rebuilt from all records present.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..config import SynthConfig
from .item import is_finished, items_dir, render_item
from .layout import Entry, write_index
from .plan import ItemPlan, plan_items
from .summary import write_summary


@dataclass(frozen=True)
class BuildResult:
    planned: int
    rendered: int
    skipped: int
    failed: list[tuple[str, str]]
    seconds: float
    summary: dict


def _work(args: tuple[ItemPlan, SynthConfig, str]) -> tuple[str, str | None]:
    plan, cfg, root = args
    try:
        render_item(plan, cfg, Path(root))
        return plan.item_id, None
    except Exception as exc:  # noqa: BLE001 - report, keep building the others
        return plan.item_id, f"{type(exc).__name__}: {exc}"


def finished_records(root: Path) -> list[dict]:
    """Records of all finished items in `root` (any seed), in a stable order."""
    d = items_dir(root)
    if not d.is_dir():
        return []
    records = []
    for path in sorted(d.glob("*.json")):
        if is_finished(root, path.stem):
            records.append(json.loads(path.read_text()))
    return records


def rebuild_index(root: Path) -> dict:
    records = finished_records(root)
    write_index(root, [Entry(**r["entry"]) for r in records])
    return write_summary(root, records)


def build(root: Path, hours: float, seed: int, cfg: SynthConfig | None = None,
          workers: int | None = None, progress: bool = True) -> BuildResult:
    cfg = cfg or SynthConfig()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    plans = plan_items(cfg, seed, hours)
    pending = [p for p in plans if not is_finished(root, p.item_id)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(pending) or 1))
    failed: list[tuple[str, str]] = []
    jobs = [(p, cfg, str(root)) for p in pending]
    bar = tqdm(total=len(plans), initial=len(plans) - len(pending), unit="item",
               desc="synth", disable=not progress, file=sys.stderr)
    if workers == 1:
        results = map(_work, jobs)
        _collect(results, bar, failed)
    else:
        # fork would copy music21's caches cheaply, but spawn is safe with threads anywhere
        with mp.get_context("spawn").Pool(workers, maxtasksperchild=50) as pool:
            _collect(pool.imap_unordered(_work, jobs), bar, failed)
    bar.close()
    summary = rebuild_index(root)
    return BuildResult(len(plans), len(pending) - len(failed), len(plans) - len(pending),
                       failed, time.perf_counter() - start, summary)


def _collect(results, bar: tqdm, failed: list[tuple[str, str]]) -> None:
    for item_id, error in results:
        if error is not None:
            failed.append((item_id, error))
            bar.write(f"failed {item_id}: {error}")
        bar.update(1)
