"""Which items a dataset has: one `ItemPlan` per item, decided from (seed, index) alone.

Plans are cheap (no parsing, no audio), so a build can list everything, skip what is finished
and hand the rest to workers; re-running with the same seed yields the same plans. The split
is a hash of the work's identity (not of the item), so every excerpt, transposition and
rendering of a piece, and every movement of a work, lands in one split, across seeds too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..config import SynthConfig
from .corpus import catalogue
from .layout import SPLITS

CORPUS_CATEGORY_WEIGHTS = {"keyboard": 0.3, "chorale": 0.25, "quartet": 0.2, "polyphony": 0.25}
TEXTURE_COMPOSER = "HarmonyNet texture generator"


@dataclass(frozen=True)
class ItemPlan:
    index: int
    item_id: str
    seed: int
    target_seconds: float  # performance length; the audio adds the release tail
    source: str  # corpus category ("keyboard", "chorale", ..., "folk") or "texture"
    piece_id: str  # corpus path or texture id (a work's movements share the split)
    composer: str
    title: str
    split: str
    year: int
    audio_ext: str
    sample_rate: int
    channels: int

    @property
    def stem(self) -> str:
        return f"{self.year}/{self.item_id}"


def split_of(piece_id: str, fractions: tuple[float, float, float]) -> str:
    """Deterministic split from a hash of the piece identity."""
    u = int.from_bytes(hashlib.sha256(piece_id.encode()).digest()[:8], "big") / 2**64
    edges = np.cumsum(fractions) / sum(fractions)
    return SPLITS[min(int(np.searchsorted(edges, u, side="right")), len(SPLITS) - 1)]


def texture_identity(seed: int, index: int) -> tuple[str, str]:
    return f"texture/{seed}/{index}", f"Texture study {seed}-{index}"


def plan_item(cfg: SynthConfig, seed: int, index: int) -> ItemPlan:
    rng = np.random.default_rng([seed, index])
    low = max(1.0, cfg.min_seconds - cfg.tail_seconds)
    target = float(rng.uniform(low, max(low, cfg.max_seconds - cfg.tail_seconds)))
    weights = np.asarray(cfg.source_weights, float)
    kind = ("corpus", "folk", "texture")[int(rng.choice(3, p=weights / weights.sum()))]
    cat = catalogue()
    if kind == "corpus":
        names = [c for c in CORPUS_CATEGORY_WEIGHTS if c in cat]
        w = np.array([CORPUS_CATEGORY_WEIGHTS[c] for c in names])
        kind = names[int(rng.choice(len(names), p=w / w.sum()))]
    if kind == "texture" or kind not in cat:
        kind = "texture"
        piece_id, title = texture_identity(seed, index)
        composer, work = TEXTURE_COMPOSER, piece_id
    else:
        piece = cat[kind][int(rng.integers(len(cat[kind])))]
        piece_id, title, composer = piece.rel, piece.title, piece.composer
        work = piece.work
    rates = np.asarray(cfg.output_rate_weights, float)
    fmts = np.asarray(cfg.output_format_weights, float)
    return ItemPlan(
        index=index, item_id=f"synth_s{seed}_{index:06d}", seed=seed, target_seconds=target,
        source=kind, piece_id=piece_id, composer=composer, title=title,
        split=split_of(work, cfg.split_fractions),
        year=int(rng.choice(cfg.years)),
        audio_ext=str(rng.choice(cfg.output_formats, p=fmts / fmts.sum())),
        sample_rate=int(rng.choice(cfg.output_rates, p=rates / rates.sum())),
        channels=2 if rng.random() < cfg.stereo_probability else 1,
    )


def plan_items(cfg: SynthConfig, seed: int, hours: float) -> list[ItemPlan]:
    """Items in index order until their planned audio reaches `hours`."""
    plans: list[ItemPlan] = []
    total = 0.0
    while total < hours * 3600.0:
        plan = plan_item(cfg, seed, len(plans))
        plans.append(plan)
        total += plan.target_seconds + cfg.tail_seconds
    return plans
