"""Dataset summary from the finished-item records: summary.json and summary.png."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from .layout import SPLITS, atomic_write_bytes
from .performance import LOWEST_KEY


def summarise(records: list[dict]) -> dict:
    pitch = np.zeros(88, int)
    velocity = np.zeros(128, int)
    hours: Counter[str] = Counter()
    items: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    fonts: Counter[str] = Counter()
    rates: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    notes = 0
    for r in records:
        e = r["entry"]
        hours[e["split"]] += e["duration"] / 3600
        items[e["split"]] += 1
        sources[r["plan"]["source"]] += 1
        fonts[f'{Path(r["preset"]["soundfont"]).name}:{r["preset"]["name"]}'] += 1
        rates[f'{r["plan"]["sample_rate"]}Hz/{r["plan"]["channels"]}ch'] += 1
        formats[r["plan"]["audio_ext"]] += 1
        notes += r["stats"]["notes"]
        pitch += np.asarray(r["stats"]["pitch_hist"], int)
        velocity += np.asarray(r["stats"]["velocity_hist"], int)
    total_h = sum(hours.values())
    return {
        "items": len(records), "hours": round(total_h, 4), "notes": int(notes),
        "notes_per_second": round(notes / max(total_h * 3600, 1e-9), 2),
        "splits": {s: {"items": items[s], "hours": round(hours[s], 4)} for s in SPLITS},
        "sources": dict(sources), "presets": dict(fonts), "sample_rates": dict(rates),
        "formats": dict(formats),
        "pitch_range": [int(LOWEST_KEY + np.flatnonzero(pitch)[0]),
                        int(LOWEST_KEY + np.flatnonzero(pitch)[-1])] if pitch.any() else [],
        "velocity_range": [int(np.flatnonzero(velocity)[0]),
                           int(np.flatnonzero(velocity)[-1])] if velocity.any() else [],
        "pitch_hist": pitch.tolist(), "velocity_hist": velocity.tolist(),
        "durations": sorted(round(r["entry"]["duration"], 2) for r in records),
    }


def write_summary(root: Path, records: list[dict]) -> dict:
    summary = summarise(records)
    atomic_write_bytes(Path(root) / "summary.json", json.dumps(summary, indent=1).encode())
    _plot(summary, Path(root) / "summary.png")
    return summary


def _plot(s: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(11, 7))
    ax[0, 0].bar(np.arange(LOWEST_KEY, LOWEST_KEY + 88), s["pitch_hist"], width=1.0)
    ax[0, 0].set(title=f"pitch ({s['notes']} notes)", xlabel="MIDI key", xlim=(20, 109))
    ax[0, 1].bar(np.arange(128), s["velocity_hist"], width=1.0, color="tab:orange")
    ax[0, 1].set(title="velocity", xlabel="MIDI velocity", xlim=(0, 128))
    ax[1, 0].hist(s["durations"], bins=20, color="tab:green")
    ax[1, 0].set(title=f"item duration ({s['items']} items, {s['hours']:.2f} h)",
                 xlabel="seconds")
    names = list(s["sources"])
    ax[1, 1].bar(names, [s["sources"][n] for n in names], color="tab:purple")
    ax[1, 1].set(title="items per source " + ", ".join(
        f"{k} {v['hours']:.2f} h" for k, v in s["splits"].items()))
    ax[1, 1].tick_params(axis="x", rotation=30)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    tmp.replace(path)
