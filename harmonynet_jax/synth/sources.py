"""The music of one item: a corpus excerpt, a harmonised folk tune, or a texture piece."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..config import SynthConfig
from .corpus import load_tunes, to_score
from .folk import harmonise
from .performance import PedalEvent, Performance
from .plan import ItemPlan
from .score import Score
from .textures import texture_piece

# Quarter notes per minute when the score gives no metronome mark (before tempo_scale).
DEFAULT_QPM = {"keyboard": (70, 120), "chorale": (60, 92), "quartet": (70, 130),
               "polyphony": (120, 180), "folk": (90, 160)}
RUBATO_ALLOWANCE = 1.15  # ask for more music than the nominal tempo needs; trim() cuts it


def corpus_score(plan: ItemPlan, rng: np.random.Generator, cfg: SynthConfig,
                 cache_dir: Path | None) -> tuple[Score, dict]:
    tunes = load_tunes(plan.piece_id, cache_dir)
    if not tunes:
        raise ValueError(f"no notes in {plan.piece_id}")
    k = int(rng.integers(len(tunes)))
    tune = tunes[k]
    qpm = tune["qpm"] or rng.uniform(*DEFAULT_QPM[plan.source])
    qpm = float(np.clip(qpm * rng.uniform(*cfg.tempo_scale), 40, 200))
    score = to_score(tune, qpm, cfg.max_keys_per_hand)
    if plan.source == "folk":
        score = harmonise(score, rng)
    need = plan.target_seconds * qpm / 60.0 * RUBATO_ALLOWANCE
    if score.length > need:
        bars = int((score.length - need) // score.bar_length)
        start = score.bar_length * int(rng.integers(0, bars + 1))
        score = score.window(start, need)
    else:
        score = score.repeated_to(need)
    shift = int(rng.integers(-cfg.transpose_semitones, cfg.transpose_semitones + 1))
    return score.transposed(shift), {"tune": k, "tune_title": tune["title"], "transpose": shift}


def item_score(plan: ItemPlan, rng: np.random.Generator, cfg: SynthConfig,
               cache_dir: Path | None) -> tuple[Score, dict]:
    if plan.source == "texture":
        score, names = texture_piece(rng, plan.target_seconds * RUBATO_ALLOWANCE, cfg)
        return score, {"textures": names}
    return corpus_score(plan, rng, cfg, cache_dir)


def trim(perf: Performance, end: float) -> Performance:
    """Cut a performance at `end` seconds: later notes dropped, held notes and pedal released."""
    notes = [replace(n, offset=min(n.offset, end)) for n in perf.notes if n.onset < end - 0.1]
    pedal = [p for p in perf.pedal if p.time < end]
    if pedal and pedal[-1].value >= 64:
        pedal.append(PedalEvent(end, 0))
    tempos = [t for t in perf.tempos if t[0] < end] or [(0.0, 120.0)]
    return Performance(notes=notes, pedal=pedal, tempos=tempos)
