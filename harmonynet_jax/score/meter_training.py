"""Fitting the meter model's weights (`ScoreConfig.meter_weights`) on corpus excerpts.

The meter model (`harmonynet_jax.score.meter`) scores every reading of a performance (beat
level x meter x downbeat phase) by a weighted sum of cues. Hand-tuning those weights on the
fidelity pieces overfits them, so they are fitted here, as a conditional log-linear model
(multinomial logit over the readings of one performance), on humanised excerpts of music21
corpus pieces that are *not* in the fidelity set (`fidelity.PIECES`): Bach chorales, Essen
folk songs (other collections than the fidelity set's), O'Neill's dance tunes and classical
string quartets. The loss of one performance is -log P(correct readings); the correct readings
are those with the written time signature, pickup length and counted-beat tempo. An L2
penalty, chosen on a piece-disjoint validation split, keeps the weights small.

    python -m harmonynet_jax.score.meter_training [--per-source 60] [--cache FILE]

prints the validation accuracy and the weights to paste into `ScoreConfig.meter_weights`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from music21 import corpus
from scipy.optimize import minimize
from scipy.special import logsumexp

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score import fidelity
from harmonynet_jax.score.events import normalize_notes
from harmonynet_jax.score.meter import FEATURES, hypotheses
from harmonynet_jax.score.pipeline import track_grids
from harmonynet_jax.score.tempo import onset_groups

SUPPORTED = ("2/4", "3/4", "4/4", "6/8", "3/8")  # meters the model can read
ABC_METER = {"C": "4/4"}  # ABC shorthand (alla breve "C|" is 2/2: not supported)
SIMPLE_BPM = (60.0, 140.0)  # quarter notes per minute, log-uniform
COMPOUND_BPM = (45.0, 100.0)  # dotted quarters per minute, log-uniform
TEMPO_TOLERANCE = 0.2  # log ratio: a reading's beat within this of the played one is right
CHORALE_BARS, SONG_BARS, QUARTET_BARS = 10, 12, 10
QUARTETS = (  # movements with one meter from the start; fidelity works (op74no1, op41no1) out
    "mozart/k155/movement1", "mozart/k155/movement2", "mozart/k155/movement3",
    "mozart/k156/movement1", "mozart/k156/movement2", "mozart/k156/movement4",
    "mozart/k458/movement1", "mozart/k458/movement2", "mozart/k458/movement3",
    "mozart/k80/movement1", "mozart/k80/movement2", "mozart/k80/movement3",
    "haydn/opus1no1/movement1", "haydn/opus1no1/movement2", "haydn/opus1no1/movement3",
    "haydn/opus1no1/movement4", "haydn/opus1no1/movement5",
    "beethoven/opus18no1/movement1", "beethoven/opus18no1/movement3",
    "beethoven/opus18no1/movement4",
)
ABC_SOURCES = ("essenFolksong", "oneills1850", "ryansMammoth")
L2_CHOICES = (1e-4, 1e-3, 1e-2)
ALL_RIGHT = 7  # meter, pickup and beat tempo
VALIDATION_EVERY = 5  # every 5th piece validates the L2 choice


@dataclass(frozen=True)
class Example:
    """The readings of one performance: features [reading, cue] and which are right."""

    name: str
    features: np.ndarray
    correct: np.ndarray
    parts: np.ndarray  # per reading: meter right (1) + pickup right (2) + beat tempo right (4)
    meters: np.ndarray  # per reading: index in SUPPORTED of its time signature
    meter: int  # index in SUPPORTED of the written time signature


def _corpus_dir() -> Path:
    return Path(corpus.__file__).parent


def abc_tunes(relative_path: str) -> list[tuple[int, str]]:
    """(X number, meter) of the tunes of an ABC file with one supported meter throughout."""
    text = (_corpus_dir() / relative_path).read_text(encoding="latin-1")
    out = []
    for block in re.split(r"^(?=X:)", text, flags=re.M):
        number = re.match(r"X:\s*(\d+)", block)
        meters = {ABC_METER.get(m, m) for m in re.findall(r"^M:\s*(\S+)", block, flags=re.M)}
        if number and len(meters) == 1 and (m := meters.pop()) in SUPPORTED:
            out.append((int(number.group(1)), m))
    return out


def training_pieces(per_source: int) -> list[fidelity.Piece]:
    """Excerpts outside the fidelity set, about `per_source` per source, meters balanced."""
    rng = np.random.default_rng(0)
    used = {(p.path, p.number) for p in fidelity.PIECES}
    pieces: list[fidelity.Piece] = []
    chorales = sorted(str(p.relative_to(_corpus_dir()).with_suffix(""))
                      for p in corpus.getComposer("bach") if p.name.startswith("bwv"))
    chorales = [c for c in chorales if (c, None) not in used]
    for c in rng.choice(chorales, size=min(per_source, len(chorales)), replace=False):
        pieces.append(fidelity.Piece(str(c), str(c), CHORALE_BARS, (0, 1), (2, 3), 0.0))
    for source in ABC_SOURCES:
        by_meter: dict[str, list[tuple[str, int]]] = {m: [] for m in SUPPORTED}
        for f in sorted((_corpus_dir() / source).glob("*.abc")):
            rel = f"{source}/{f.stem}"
            for number, m in abc_tunes(f"{source}/{f.name}"):
                if (rel, number) not in used and rel != "essenFolksong/kinder0":
                    by_meter[m].append((rel, number))
        for tunes in by_meter.values():
            k = min(len(tunes), max(1, per_source // len(SUPPORTED)))
            for i in rng.choice(len(tunes), size=k, replace=False) if tunes else []:
                rel, number = tunes[int(i)]
                pieces.append(fidelity.Piece(f"{rel}#{number}", rel, SONG_BARS, (0,), (), 0.0,
                                             number=number))
    for q in QUARTETS[:per_source]:
        pieces.append(fidelity.Piece(q, q, QUARTET_BARS, (0, 1), (2, 3), 0.0))
    return pieces


def _bpm(ratio: str, rng: np.random.Generator) -> float:
    """A played tempo in quarter notes per minute: log-uniform over common beat tempos."""
    compound = ratio in ("6/8", "3/8")
    lo, hi = COMPOUND_BPM if compound else SIMPLE_BPM
    beat_bpm = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return beat_bpm * (1.5 if compound else 1.0)


def make_example(piece: fidelity.Piece, seed: int, cfg: ScoreConfig) -> Example | None:
    """Perform one excerpt at a random tempo and collect its readings (None: unusable)."""
    try:
        ref_score, ref = fidelity.reference(piece)
    except Exception:  # noqa: BLE001 - corpus files that music21 cannot excerpt
        return None
    down, _, ratio = fidelity.bar_frame(ref_score)
    if ratio not in SUPPORTED or len(ref) < 8:
        return None
    rng = np.random.default_rng(seed)
    bpm = _bpm(ratio, rng)
    played, _ = fidelity.perform_reference(ref_score, ref, bpm, seed)
    notes = normalize_notes(played, cfg.min_note_seconds)
    groups = onset_groups(notes, cfg)
    found = [h for grid in track_grids(notes, None, cfg)
             for h in hypotheses(notes, groups, grid, cfg)]
    quarter_s = 60.0 / bpm
    parts = np.array([
        (h.rhythm.meter.ratio == ratio) + 2 * (h.rhythm.anacrusis == down)
        + 4 * (abs(np.log(float(np.median(h.rhythm.grid.periods()))
                          / float(h.rhythm.meter.beat_ql) / quarter_s)) < TEMPO_TOLERANCE)
        for h in found])
    x = np.array([[h.features.get(f, 0.0) for f in FEATURES] for h in found])
    meters = np.array([SUPPORTED.index(h.rhythm.meter.ratio) for h in found])
    return Example(piece.name, x, parts == ALL_RIGHT, parts, meters, SUPPORTED.index(ratio))


def loss(w: np.ndarray, examples: Sequence[Example], l2: float) -> tuple[float, np.ndarray]:
    """Mean -log P(correct readings) under P(reading) = softmax(-cost), plus L2; gradient."""
    total, grad = 0.0, np.zeros_like(w)
    for ex in examples:
        cost = ex.features @ w
        p = np.exp(-cost - logsumexp(-cost))
        q = np.where(ex.correct, np.exp(-cost - logsumexp(-cost[ex.correct])), 0.0)
        total += logsumexp(-cost) - logsumexp(-cost[ex.correct])
        grad += (q - p) @ ex.features
    n = max(1, len(examples))
    return total / n + 0.5 * l2 * float(w @ w), grad / n + l2 * w


def fit(examples: Sequence[Example], l2: float, w0: np.ndarray | None = None) -> np.ndarray:
    """Weights minimising `loss` (L-BFGS)."""
    start = np.zeros(len(FEATURES)) if w0 is None else w0
    return minimize(loss, start, args=(examples, l2), jac=True, method="L-BFGS-B").x


def accuracy(examples: Sequence[Example], w: np.ndarray) -> float:
    """Share of performances whose cheapest reading is a correct one."""
    return float(np.mean([ex.correct[np.argmin(ex.features @ w)] for ex in examples]))


def error_kinds(examples: Sequence[Example], w: np.ndarray) -> dict[str, float]:
    """Shares of performances whose chosen reading has the right beat tempo / meter /
    pickup (each on its own)."""
    chosen = np.array([ex.parts[np.argmin(ex.features @ w)] for ex in examples])
    return {"tempo": float(np.mean(chosen & 4 > 0)), "meter": float(np.mean(chosen & 1 > 0)),
            "pickup": float(np.mean(chosen & 2 > 0))}


def confusion(examples: Sequence[Example], w: np.ndarray) -> np.ndarray:
    """Counts [written meter, chosen meter] (indices in SUPPORTED)."""
    out = np.zeros((len(SUPPORTED), len(SUPPORTED)), dtype=int)
    for ex in examples:
        out[ex.meter, ex.meters[np.argmin(ex.features @ w)]] += 1
    return out


def collect(pieces: Sequence[fidelity.Piece], seeds: int, cfg: ScoreConfig) -> list[Example]:
    out = []
    for i, piece in enumerate(pieces):
        for seed in range(seeds):
            ex = make_example(piece, 1000 * i + seed, cfg)
            if ex is not None:
                out.append(ex)
    return out


def _save(path: Path, examples: Sequence[Example]) -> None:
    np.savez_compressed(path, names=np.array([e.name for e in examples]),
                        sizes=np.array([len(e.correct) for e in examples]),
                        x=np.concatenate([e.features for e in examples]),
                        y=np.concatenate([e.parts for e in examples]),
                        m=np.concatenate([e.meters for e in examples]),
                        ref=np.array([e.meter for e in examples]),
                        features=np.array(FEATURES))


def _load(path: Path) -> list[Example] | None:
    data = np.load(path)
    if tuple(data["features"]) != FEATURES:
        return None
    bounds = np.concatenate([[0], np.cumsum(data["sizes"])])
    return [Example(str(n), data["x"][a:b], data["y"][a:b] == ALL_RIGHT, data["y"][a:b],
                    data["m"][a:b], int(r))
            for n, a, b, r in zip(data["names"], bounds[:-1], bounds[1:], data["ref"],
                                  strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-source", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=1, help="performances per excerpt")
    parser.add_argument("--cache", type=Path, default=None, help="features file (.npz)")
    args = parser.parse_args()
    cfg = ScoreConfig()
    examples = _load(args.cache) if args.cache and args.cache.exists() else None
    if examples is None:
        examples = collect(training_pieces(args.per_source), args.seeds, cfg)
        if args.cache:
            _save(args.cache, examples)
    usable = [e for e in examples if e.correct.any()]
    print(f"{len(examples)} performances, {len(usable)} with a correct reading among "
          f"the candidates")
    train = [e for i, e in enumerate(usable) if i % VALIDATION_EVERY]
    valid = [e for i, e in enumerate(usable) if i % VALIDATION_EVERY == 0]
    current = np.array([dict(cfg.meter_weights).get(f, 0.0) for f in FEATURES])
    print(f"current weights: train {accuracy(train, current):.3f}, "
          f"validation {accuracy(valid, current):.3f}")
    best = max(L2_CHOICES, key=lambda l2: accuracy(valid, fit(train, l2)))
    for l2 in L2_CHOICES:
        w = fit(train, l2)
        print(f"l2 {l2:g}: train {accuracy(train, w):.3f}, validation {accuracy(valid, w):.3f}")
    w = fit(usable, best)
    print(f"chosen l2 {best:g}; all {accuracy(usable, w):.3f}; of all performances "
          f"{accuracy(usable, w) * len(usable) / max(1, len(examples)):.3f}")
    print("right, each on its own:", {k: round(v, 3) for k, v in error_kinds(usable, w).items()})
    print("written (rows) x chosen meter:", " ".join(SUPPORTED))
    for name, row in zip(SUPPORTED, confusion(usable, w), strict=True):
        print(f"  {name}: {row}")
    print("    meter_weights: tuple[tuple[str, float], ...] = (")
    pairs = [f'("{f}", {v:.3f})' for f, v in zip(FEATURES, w, strict=True)]
    for i in range(0, len(pairs), 4):
        print("        " + ", ".join(pairs[i:i + 4]) + ",")
    print("    )")


if __name__ == "__main__":
    main()
