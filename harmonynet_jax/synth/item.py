"""Render one planned item: music -> performance -> MIDI + audio -> finished-item record.

The record (JSON under .synth/items/) is written last and atomically: it is the proof that an
item is complete, so an interrupted build resumes by skipping items that have one.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..config import SynthConfig
from .corpus import default_cache_dir
from .effects import apply_effects, sample_effects
from .fluid import FluidSettings
from .humanize import humanize
from .layout import Entry, atomic_write_bytes
from .performance import LOWEST_KEY, sanitize
from .plan import ItemPlan, split_of, texture_identity
from .render import OutputSpec, render_to_files
from .soundfonts import Preset, piano_presets
from .sources import item_score, trim

STATE_DIR = ".synth"
DYNAMIC_LOADING = {"synth.dynamic-sample-loading": "1"}  # load only the piano's samples


def items_dir(root: Path) -> Path:
    return Path(root) / STATE_DIR / "items"


def record_path(root: Path, item_id: str) -> Path:
    return items_dir(root) / f"{item_id}.json"


def is_finished(root: Path, item_id: str) -> bool:
    """A record exists and the files it names are present."""
    path = record_path(root, item_id)
    if not path.exists():
        return False
    try:
        entry = json.loads(path.read_text())["entry"]
    except (ValueError, KeyError):
        return False
    return all((Path(root) / entry[k]).exists() for k in ("midi_filename", "audio_filename"))


def choose_preset(rng: np.random.Generator, cfg: SynthConfig) -> Preset:
    """SoundFont first, then program, so each instrument gets an equal share."""
    presets = piano_presets(cfg.soundfont_dirs, cfg.piano_programs)
    if not presets:
        raise RuntimeError("no piano SoundFont found: install fluid-soundfont-gm")
    fonts = sorted({p.soundfont for p in presets})
    font = fonts[int(rng.integers(len(fonts)))]
    mine = [p for p in presets if p.soundfont == font]
    return mine[int(rng.integers(len(mine)))]


def sample_fluid(rng: np.random.Generator, cfg: SynthConfig, out_rate: int) -> FluidSettings:
    rate = min((r for r in cfg.render_rates if r >= out_rate), default=max(cfg.render_rates))
    reverb = chorus = None
    if rng.random() < cfg.fluid_reverb_probability:
        reverb = {"room-size": rng.uniform(0.1, 0.9), "damp": rng.uniform(0.0, 0.8),
                  "width": rng.uniform(0.5, 30.0), "level": rng.uniform(0.1, 0.7)}
    if rng.random() < cfg.fluid_chorus_probability:
        chorus = {"nr": int(rng.integers(2, 6)), "level": rng.uniform(0.3, 1.5),
                  "speed": rng.uniform(0.2, 1.5), "depth": rng.uniform(1.0, 8.0)}
    return FluidSettings(sample_rate=rate, gain=float(rng.uniform(*cfg.fluid_gain)),
                         polyphony=int(rng.integers(cfg.fluid_polyphony[0],
                                                    cfg.fluid_polyphony[1] + 1)),
                         reverb=reverb, chorus=chorus, extra=dict(DYNAMIC_LOADING))


def _music(plan: ItemPlan, rng: np.random.Generator, cfg: SynthConfig, cache: Path):
    """Score for the plan; a corpus file that fails to parse falls back to a texture piece."""
    try:
        score, info = item_score(plan, rng, cfg, cache)
        if not score.notes:
            raise ValueError("empty excerpt")
        return plan, score, info
    except Exception:  # noqa: BLE001 - any parser failure: keep the item, change the music
        piece_id, title = texture_identity(plan.seed, plan.index)
        plan = replace(plan, source="texture", piece_id=piece_id, title=title,
                       composer="HarmonyNet texture generator",
                       split=split_of(piece_id, cfg.split_fractions))
        score, info = item_score(plan, rng, cfg, cache)
        info["fallback_from"] = traceback.format_exc(limit=1).strip().splitlines()[-1]
        return plan, score, info


def render_item(plan: ItemPlan, cfg: SynthConfig, root: Path) -> dict:
    """Render `plan` into `root`; returns (and stores) its record."""
    root = Path(root)
    rng = np.random.default_rng([plan.seed, plan.index, 1])
    plan, score, info = _music(plan, rng, cfg, default_cache_dir())
    perf, style = humanize(score, rng, cfg)
    perf = sanitize(trim(perf, plan.target_seconds))
    preset = choose_preset(rng, cfg)
    fluid = sample_fluid(rng, cfg, plan.sample_rate)
    effects = sample_effects(rng, cfg)
    audio_rel = f"{plan.stem}.{plan.audio_ext}"
    midi_rel = f"{plan.stem}.midi"
    out = OutputSpec(root / audio_rel, root / midi_rel, plan.sample_rate, plan.channels,
                     kbps=cfg.mp3_output_kbps)
    duration = render_to_files(perf, preset, fluid, out, tail_seconds=cfg.tail_seconds,
                               ticks_per_beat=cfg.ticks_per_beat,
                               post=lambda a, r: apply_effects(a, r, effects))
    entry = Entry(plan.composer, plan.title, plan.split, plan.year, midi_rel, audio_rel,
                  round(duration, 6))
    pitches = np.array([n.pitch for n in perf.notes], int)
    velocities = np.array([n.velocity for n in perf.notes], int)
    record = {
        "entry": asdict(entry),
        "plan": asdict(plan),
        "music": info,
        "stats": {
            "notes": len(perf.notes),
            "pedal_events": len(perf.pedal),
            "pitch_hist": np.bincount(pitches - LOWEST_KEY, minlength=88).tolist(),
            "velocity_hist": np.bincount(velocities, minlength=128).tolist(),
        },
        "style": asdict(style),
        "preset": asdict(preset),
        "fluid": asdict(fluid),
        "effects": effects.as_dict(),
    }
    atomic_write_bytes(record_path(root, plan.item_id), json.dumps(record, indent=1).encode())
    return record
