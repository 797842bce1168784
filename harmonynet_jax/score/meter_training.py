"""Fitting the meter model's weights (`ScoreConfig.meter_weights`) on corpus excerpts.

The meter model (`harmonynet_jax.score.meter`) scores every reading of a performance (beat
level x meter x downbeat phase) by a weighted sum of cues. Hand-tuning those weights on the
fidelity pieces overfits them, so they are fitted here, as a conditional log-linear model
(multinomial logit over the readings of one performance), on humanised excerpts of music21
corpus pieces that are *not* in the fidelity set (`fidelity.PIECES`): Bach chorales, Essen
folk songs (other collections than the fidelity set's), O'Neill's dance tunes and classical
string quartets. The loss of one performance is -log P(correct readings); the correct readings
are those with the written time signature, pickup length and counted-beat tempo. An L2
penalty, chosen by cross-validation with folds split by piece, keeps the weights small.

    python -m harmonynet_jax.score.meter_training [--per-source 120] [--cache FILE]

prints the cross-validated accuracy (per source too) and the weights to paste into
`ScoreConfig.meter_weights`.
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

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score import fidelity
from harmonynet_jax.score.events import normalize_notes
from harmonynet_jax.score.meter import FEATURES, hypotheses
from harmonynet_jax.score.pipeline import track_grids
from harmonynet_jax.score.tempo import OnsetAnalysis

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
FOLDS = 5  # cross-validation folds, split by piece (both performances of a piece together)
ALL_RIGHT = 7  # meter, pickup and beat tempo


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
    down, bar, ratio = fidelity.bar_frame(ref_score)
    if ratio not in SUPPORTED or len(ref) < 8:
        return None
    # The score starts at the first note: its pickup runs from there to the next downbeat
    # (a first bar opening with rests is a pickup too).
    pickup = (down - min(n.start for n in ref)) % bar
    rng = np.random.default_rng(seed)
    bpm = _bpm(ratio, rng)
    played, _ = fidelity.perform_reference(ref_score, ref, bpm, seed)
    notes = normalize_notes(played, cfg.min_note_seconds)
    onsets = OnsetAnalysis.of(notes, cfg)
    found = [h for grid in track_grids(notes, onsets, None, cfg)
             for h in hypotheses(notes, onsets, grid, cfg)]
    quarter_s = 60.0 / bpm
    parts = np.array([
        (h.rhythm.meter.ratio == ratio) + 2 * (h.rhythm.anacrusis == pickup)
        + 4 * (abs(np.log(float(np.median(h.rhythm.grid.periods()))
                          / float(h.rhythm.meter.beat_ql) / quarter_s)) < TEMPO_TOLERANCE)
        for h in found])
    x = np.array([[h.features.get(f, 0.0) for f in FEATURES] for h in found])
    meters = np.array([SUPPORTED.index(h.rhythm.meter.ratio) for h in found])
    return Example(piece.name, x, parts == ALL_RIGHT, parts, meters, SUPPORTED.index(ratio))


@dataclass(frozen=True)
class Packed:
    """Examples stacked into one matrix for fast segment-wise sums (`np.*.reduceat`)."""

    x: np.ndarray  # [all readings, cue]
    correct: np.ndarray  # [all readings]
    starts: np.ndarray  # first row of each performance


def meter_balance(examples: Sequence[Example]) -> np.ndarray:
    """Per example 1 / (examples with its written meter), normalised: for an accuracy in
    which every meter weighs the same (the corpus mix is 4/4-heavy: chorales). Weighting the
    loss this way was tried and did not raise that balanced accuracy under cross-validation,
    so the fit itself uses the plain mean."""
    counts = np.bincount([e.meter for e in examples], minlength=len(SUPPORTED))
    w = np.array([1.0 / counts[e.meter] for e in examples])
    return w / w.sum()


def pack(examples: Sequence[Example]) -> Packed:
    sizes = [len(e.correct) for e in examples]
    return Packed(np.concatenate([e.features for e in examples]),
                  np.concatenate([e.correct for e in examples]),
                  np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int))


def _segment_logsumexp(values: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment log(sum(exp(values))), and each row's share exp(v - that)."""
    top = np.maximum.reduceat(values, starts)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(values))))
    lse = top + np.log(np.add.reduceat(np.exp(values - top[seg]), starts))
    return lse, np.exp(values - lse[seg])


def loss(w: np.ndarray, examples: Sequence[Example] | Packed, l2: float
         ) -> tuple[float, np.ndarray]:
    """Mean -log P(correct readings) under P(reading) = softmax(-cost), plus L2; gradient."""
    data = examples if isinstance(examples, Packed) else pack(examples)
    neg = -(data.x @ w)
    lse_all, p = _segment_logsumexp(neg, data.starts)
    lse_ok, q = _segment_logsumexp(np.where(data.correct, neg, -np.inf), data.starts)
    n = len(data.starts)
    grad = (np.where(data.correct, q, 0.0) - p) @ data.x
    return float(np.sum(lse_all - lse_ok)) / n + 0.5 * l2 * float(w @ w), grad / n + l2 * w


def fit(examples: Sequence[Example], l2: float) -> np.ndarray:
    """Weights minimising `loss` (L-BFGS). The cues are fitted in std units, so the L2
    penalty treats them alike (their raw scales differ a hundredfold), and the weights are
    returned for the raw cues."""
    data = pack(examples)
    scale = data.x.std(axis=0)
    scale[scale == 0] = 1.0
    scaled = Packed(data.x / scale, data.correct, data.starts)
    w = minimize(loss, np.zeros(data.x.shape[1]), args=(scaled, l2), jac=True,
                 method="L-BFGS-B").x
    return w / scale


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
    with np.load(path) as npz:  # each key read once (an NpzFile decompresses per access)
        data = {k: npz[k] for k in npz.files}
    if tuple(data["features"]) != FEATURES:
        return None
    x, y, m = data["x"], data["y"], data["m"]
    bounds = np.concatenate([[0], np.cumsum(data["sizes"])])
    return [Example(str(n), x[a:b], y[a:b] == ALL_RIGHT, y[a:b], m[a:b], int(r))
            for n, a, b, r in zip(data["names"], bounds[:-1], bounds[1:], data["ref"],
                                  strict=True)]


def source(name: str) -> str:
    """The collection an example comes from (for per-source accuracy)."""
    top = name.split("/")[0]
    return {"bach": "chorales", "mozart": "quartets", "haydn": "quartets",
            "beethoven": "quartets"}.get(top, "folk tunes")


def cross_validate(examples: Sequence[Example], l2: float, folds: int = FOLDS
                   ) -> np.ndarray:
    """Per example: is the cheapest reading right when its piece was left out of fitting?"""
    pieces = sorted({e.name for e in examples})
    fold_of = {name: i % folds for i, name in enumerate(pieces)}
    right = np.zeros(len(examples), dtype=bool)
    for k in range(folds):
        w = fit([e for e in examples if fold_of[e.name] != k], l2)
        for i, e in enumerate(examples):
            if fold_of[e.name] == k:
                right[i] = e.correct[np.argmin(e.features @ w)]
    return right


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-source", type=int, default=120)
    parser.add_argument("--seeds", type=int, default=2, help="performances per excerpt")
    parser.add_argument("--cache", type=Path, default=None, help="features file (.npz)")
    parser.add_argument("--drop", default="", help="cues to leave out, comma-separated")
    args = parser.parse_args()
    cfg = ScoreConfig()
    examples = _load(args.cache) if args.cache and args.cache.exists() else None
    if examples is None:
        examples = collect(training_pieces(args.per_source), args.seeds, cfg)
        if args.cache:
            _save(args.cache, examples)
    dropped = [FEATURES.index(f) for f in args.drop.split(",") if f]
    for e in examples:
        e.features[:, dropped] = 0.0
    usable = [e for e in examples if e.correct.any()]
    print(f"{len(examples)} performances, {len(usable)} with a correct reading among "
          f"the candidates")
    current = np.array([dict(cfg.meter_weights).get(f, 0.0) for f in FEATURES])
    print(f"current weights: {accuracy(usable, current):.3f} right")
    scores = {}
    balance = meter_balance(usable)
    for l2 in L2_CHOICES:
        right = cross_validate(usable, l2)
        scores[l2] = float(right.mean())
        by_source = {src: float(np.mean([r for r, e in zip(right, usable, strict=True)
                                         if source(e.name) == src]))
                     for src in sorted({source(e.name) for e in usable})}
        by_meter = {m: float(np.mean([r for r, e in zip(right, usable, strict=True)
                                      if SUPPORTED[e.meter] == m])) for m in SUPPORTED}
        print(f"l2 {l2:g}: {FOLDS}-fold cross-validated {scores[l2]:.3f} right, "
              f"{balance @ right:.3f} with every meter weighing the same; "
              + " ".join(f"{k} {v:.3f}" for k, v in {**by_source, **by_meter}.items()))
    best = max(scores, key=lambda l2: scores[l2])
    w = fit(usable, best)
    print(f"chosen l2 {best:g}; fitted on all: {accuracy(usable, w):.3f} right")
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
