"""Fitting the meter model's scorer (`meter_scorer`, `meter_model.json`) on corpus excerpts.

The meter model (`harmonynet_jax.score.meter`) describes every reading of a performance (beat
level x meter x downbeat phase) by its cues and a scorer picks one. Tuning that scorer on
the fidelity pieces overfits it, so it is fitted here, as a conditional model (a softmax
over the readings of one performance), on humanised excerpts of music21 corpus pieces that
are *not* in the fidelity set (`fidelity.PIECES`): Bach chorales, Essen folk songs (other
collections than the fidelity set's), O'Neill's dance tunes, classical string quartets and the
one keyboard work of the corpus outside the fidelity set.
The loss of one performance is -log P(correct readings); the correct readings are those with
the written time signature, pickup length and counted-beat tempo. An L2 penalty keeps the
weights small. The log-linear expert is fitted to convergence (L-BFGS), the networks with a
fixed number of Adam steps from `ENSEMBLE` initialisations (`meter_scorer` for the model).

    python -m harmonynet_jax.score.meter_training [--per-source 120] [--cache FILE]
        [--durations played[,sounding]] [--write]

prints the accuracy under cross-validation (folds split by piece; per source and meter too)
and, with --write, fits on all performances and writes `meter_model.json`. `--durations
sounding` adds performances rung out by the pedal and read as the frame decoder's notes
(`pedal_changes`, `pipeline.read_sounding`); measured and not shipped.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from music21 import corpus, stream
from scipy.optimize import minimize

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score import fidelity
from harmonynet_jax.score.events import Note, normalize_notes
from harmonynet_jax.score.meter import FEATURES, feature_matrix, hypotheses
from harmonynet_jax.score.meter_scorer import (
    MODEL_FILE,
    MeterScorer,
    model_inputs,
    network_scores,
)
from harmonynet_jax.score.pipeline import DURATIONS, read_sounding, track_grids
from harmonynet_jax.score.tempo import OnsetAnalysis

SUPPORTED = ("2/4", "3/4", "4/4", "6/8", "3/8")  # meters the model can read
ABC_METER = {"C": "4/4"}  # ABC shorthand (alla breve "C|" is 2/2: not supported)
SIMPLE_BPM = (60.0, 140.0)  # quarter notes per minute, log-uniform
COMPOUND_BPM = (45.0, 100.0)  # dotted quarters per minute, log-uniform
TEMPO_TOLERANCE = 0.2  # log ratio: a reading's beat within this of the played one is right
CHORALE_BARS, SONG_BARS, QUARTET_BARS = 10, 12, 10
QUARTETS = (  # movements whose first bars keep one meter read here (2/2 and 9/8 ones out);
    # the fidelity set's works (Haydn op. 74/1, R. Schumann op. 41/1) are left out whole
    "mozart/k155/movement1", "mozart/k155/movement2", "mozart/k155/movement3",
    "mozart/k156/movement1", "mozart/k156/movement2", "mozart/k156/movement4",
    "mozart/k458/movement1", "mozart/k458/movement2", "mozart/k458/movement3",
    "mozart/k80/movement1", "mozart/k80/movement2", "mozart/k80/movement3",
    "haydn/opus1no1/movement1", "haydn/opus1no1/movement2", "haydn/opus1no1/movement3",
    "haydn/opus1no1/movement4", "haydn/opus1no1/movement5",
    "beethoven/opus18no1/movement1", "beethoven/opus18no1/movement3",
    "beethoven/opus18no1/movement4", "mozart/k156/movement3", "mozart/k458/movement4",
    "beethoven/opus18no4", "beethoven/opus18no5", "beethoven/opus74",
    "beethoven/opus59no1/movement1", "beethoven/opus59no1/movement2",
    "beethoven/opus59no1/movement3", "beethoven/opus59no1/movement4",
    "beethoven/opus59no2/movement1", "beethoven/opus59no2/movement2",
    "beethoven/opus59no2/movement3", "beethoven/opus59no3/movement1",
    "beethoven/opus59no3/movement2", "beethoven/opus59no3/movement3",
)
KEYBOARD = ("cpebach/h186",)  # two staves: the corpus's one keyboard work outside the fidelity set
ABC_SOURCES = ("essenFolksong", "oneills1850", "ryansMammoth")
L2 = 1e-3  # on all weights but the hidden biases (cross-validated: docs/score.md)
HIDDEN = 8  # hidden units per network
ENSEMBLE = 5  # networks whose scores are summed
STEPS = 600  # full-batch Adam steps
LEARNING_RATE = 3e-3
FIT_SEED = 100  # the first network's initialisation (the next ones count up)
FOLDS = 5  # cross-validation folds, split by piece (both performances of a piece together)
ALL_RIGHT = 7  # meter, pickup and beat tempo
# Sounding examples (notes lengthened by the pedal, as the frame decoder hears them): the pedal
# changes every PEDAL_PERIODS_Q quarter notes from a random quarter, or is never pressed, so
# where it lifts says nothing about the barlines (the fidelity set's performances change it
# at every barline: fitting on that would teach the scorer a cue of the performance model).
PEDAL_PERIODS_Q = (1, 2, 3, 4)
NO_PEDAL_SHARE = 0.2
SOUNDING_SEED = 500  # added to a performance's seed: another tempo than its played twin


@dataclass(frozen=True)
class Example:
    """The readings of one performance: features [reading, cue] and which are right."""

    name: str
    features: np.ndarray
    correct: np.ndarray
    parts: np.ndarray  # per reading: meter right (1) + pickup right (2) + beat tempo right (4)
    meters: np.ndarray  # per reading: index in SUPPORTED of its time signature
    meter: int  # index in SUPPORTED of the written time signature
    durations: str = "played"  # what the notes' offsets were (`pipeline.DURATIONS`)


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
    for k in KEYBOARD:
        pieces.append(fidelity.Piece(k, k, QUARTET_BARS, (0,), (1,), 0.0))
    return pieces


def _bpm(ratio: str, rng: np.random.Generator) -> float:
    """A played tempo in quarter notes per minute: log-uniform over common beat tempos."""
    compound = ratio in ("6/8", "3/8")
    lo, hi = COMPOUND_BPM if compound else SIMPLE_BPM
    beat_bpm = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return beat_bpm * (1.5 if compound else 1.0)


def pedal_changes(length_q: float, rng: np.random.Generator) -> list[float]:
    """Where the pedal changes (quarter notes) in a sounding example: a steady period from a
    random phase, unrelated to the meter; no change points at all: no pedal."""
    if rng.random() < NO_PEDAL_SHARE:
        return []
    period = float(rng.choice(PEDAL_PERIODS_Q))
    return [0.0, *np.arange(float(rng.integers(1, 5)), length_q, period)]


def performed_notes(ref_score: stream.Score, ref: Sequence[fidelity.Written], bpm: float,
                    seed: int, rng: np.random.Generator, durations: str, cfg: ScoreConfig
                    ) -> list[Note]:
    """The notes the pipeline's meter sees for one performance, read as `durations`."""
    if durations == "played":
        played, _ = fidelity.perform_reference(ref_score, ref, bpm, seed)
        return normalize_notes(played, cfg.min_note_seconds)
    played, pedals = fidelity.perform_reference(ref_score, ref, bpm, seed,
                                                lambda length: pedal_changes(length, rng))
    ringing = normalize_notes(fidelity.ringing(played, pedals), cfg.min_note_seconds)
    return read_sounding(ringing, cfg)[1]


def make_example(piece: fidelity.Piece, seed: int, cfg: ScoreConfig,
                 durations: str = "played") -> Example | None:
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
    if durations != "played":
        seed += SOUNDING_SEED
    rng = np.random.default_rng(seed)
    bpm = _bpm(ratio, rng)
    notes = performed_notes(ref_score, ref, bpm, seed, rng, durations, cfg)
    onsets = OnsetAnalysis.of(notes, cfg)
    found = [h for grid in track_grids(notes, onsets, None, cfg)
             for h in hypotheses(notes, onsets, grid, cfg)]
    quarter_s = 60.0 / bpm
    parts = np.array([
        (h.rhythm.meter.ratio == ratio) + 2 * (h.rhythm.anacrusis == pickup)
        + 4 * (abs(np.log(float(np.median(h.rhythm.grid.periods()))
                          / float(h.rhythm.meter.beat_ql) / quarter_s)) < TEMPO_TOLERANCE)
        for h in found])
    x = feature_matrix(found)
    meters = np.array([SUPPORTED.index(h.rhythm.meter.ratio) for h in found])
    return Example(piece.name, x, parts == ALL_RIGHT, parts, meters, SUPPORTED.index(ratio),
                   durations)


def meter_balance(examples: Sequence[Example]) -> np.ndarray:
    """Per example 1 / (examples with its written meter), normalised: for an accuracy in
    which every meter weighs the same (the corpus mix is 4/4-heavy: chorales)."""
    counts = np.bincount([e.meter for e in examples], minlength=len(SUPPORTED))
    w = np.array([1.0 / counts[e.meter] for e in examples])
    return w / w.sum()


def loss(params: dict[str, jax.Array], z: jax.Array, performance: jax.Array,
         correct: jax.Array, n: int, l2: float) -> jax.Array:
    """Mean -log P(correct readings) under P(reading) = softmax(score) within each
    performance, plus L2 on the weights."""
    scores = network_scores(params, z, jnp)

    def log_sum_exp(v: jax.Array) -> jax.Array:
        top = jax.ops.segment_max(v, performance, n)
        return top + jnp.log(jax.ops.segment_sum(jnp.exp(v - top[performance]), performance, n))

    right = log_sum_exp(jnp.where(correct, scores, scores - 1e4))
    penalty = sum(jnp.sum(params[k] ** 2) for k in ("w", "W", "v"))
    return jnp.mean(log_sum_exp(scores) - right) + l2 * penalty


def _initial_params(d: int, hidden: int, key: jax.Array) -> dict[str, jax.Array]:
    return {"w": jnp.zeros(d), "W": jax.random.normal(key, (d, hidden)) / np.sqrt(d),
            "b": jnp.zeros(hidden), "v": jnp.zeros(hidden)}


def _fit_network(data: tuple[jax.Array, ...], n: int, l2: float, seed: int
                 ) -> dict[str, np.ndarray]:
    """One network: `STEPS` full-batch Adam steps from a random hidden layer."""
    k_hidden, _, _ = jax.random.split(jax.random.PRNGKey(seed), 3)
    params = _initial_params(data[0].shape[1], HIDDEN, k_hidden)
    opt = optax.adam(LEARNING_RATE)
    state = opt.init(params)

    @jax.jit
    def step(params: dict[str, jax.Array], state: optax.OptState
             ) -> tuple[dict[str, jax.Array], optax.OptState]:
        grads = jax.grad(loss)(params, *data, n, l2)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(STEPS):
        params, state = step(params, state)
    return {k: np.asarray(v, dtype=float) for k, v in params.items()}


def _fit_linear(data: tuple[jax.Array, ...], n: int, l2: float, cues: int) -> np.ndarray:
    """The log-linear expert's weights on the standardised cues (L-BFGS to convergence)."""
    z = data[0][:, :cues]
    empty = _initial_params(cues, 0, jax.random.PRNGKey(0))
    value_and_grad = jax.jit(jax.value_and_grad(
        lambda u: loss({**empty, "w": u}, z, *data[1:], n, l2)))

    def objective(u: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = value_and_grad(jnp.asarray(u, jnp.float32))
        return float(value), np.asarray(grad, dtype=float)

    return minimize(objective, np.zeros(cues), jac=True, method="L-BFGS-B").x


def fit(examples: Sequence[Example], l2: float = L2, seed: int = FIT_SEED,
        networks: int = ENSEMBLE) -> MeterScorer:
    """Both experts fitted on `examples` (standardised with their mean and spread), the
    log-linear one scaled to the networks' spread of scores (`meter_scorer`)."""
    x = np.concatenate([e.features for e in examples])
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    z = np.concatenate([model_inputs(e.features, mean, std) for e in examples])
    performance = np.repeat(np.arange(len(examples)), [len(e.correct) for e in examples])
    correct = np.concatenate([e.correct for e in examples])
    data = (jnp.asarray(z, jnp.float32), jnp.asarray(performance), jnp.asarray(correct))
    n = len(examples)
    models = tuple(_fit_network(data, n, l2, seed + k) for k in range(networks))
    linear = _fit_linear(data, n, l2, x.shape[1])
    scorer = MeterScorer(FEATURES, mean, std, np.zeros_like(linear), models)
    spread_networks = np.mean([scorer.scores(e.features).std() for e in examples])
    spread_linear = np.mean([(model_inputs(e.features, mean, std)[:, :len(linear)] @ linear)
                             .std() for e in examples])
    scale = spread_networks / spread_linear if networks and spread_linear > 0 else 1.0
    return replace(scorer, linear=scale * linear)


def chosen(examples: Sequence[Example], scorer: MeterScorer) -> list[int]:
    """Per performance, the index of the reading the scorer picks."""
    return [int(np.argmax(scorer.scores(e.features))) for e in examples]


def accuracy(examples: Sequence[Example], scorer: MeterScorer) -> float:
    """Share of performances whose chosen reading is a correct one."""
    return float(np.mean([e.correct[c] for e, c in zip(examples, chosen(examples, scorer),
                                                      strict=True)]))


def collect(pieces: Sequence[fidelity.Piece], seeds: int, cfg: ScoreConfig,
            durations: str = "played") -> list[Example]:
    out = []
    for i, piece in enumerate(pieces):
        for seed in range(seeds):
            ex = make_example(piece, 1000 * i + seed, cfg, durations)
            if ex is not None:
                out.append(ex)
    return out


def save_examples(path: Path, examples: Sequence[Example]) -> None:
    np.savez_compressed(path, names=np.array([e.name for e in examples]),
                        sizes=np.array([len(e.correct) for e in examples]),
                        x=np.concatenate([e.features for e in examples]),
                        y=np.concatenate([e.parts for e in examples]),
                        m=np.concatenate([e.meters for e in examples]),
                        ref=np.array([e.meter for e in examples]),
                        durations=np.array([e.durations for e in examples]),
                        features=np.array(FEATURES))


def load_examples(path: Path) -> list[Example] | None:
    with np.load(path) as npz:  # each key read once (an NpzFile decompresses per access)
        data = {k: npz[k] for k in npz.files}
    if tuple(data["features"]) != FEATURES:
        return None
    x, y, m = data["x"], data["y"], data["m"]
    bounds = np.concatenate([[0], np.cumsum(data["sizes"])])
    modes = data.get("durations", np.array(["played"] * len(data["names"])))
    return [Example(str(n), x[a:b], y[a:b] == ALL_RIGHT, y[a:b], m[a:b], int(r), str(d))
            for n, a, b, r, d in zip(data["names"], bounds[:-1], bounds[1:], data["ref"],
                                     modes, strict=True)]


def source(name: str) -> str:
    """The collection an example comes from (for per-source accuracy)."""
    if name in KEYBOARD:
        return "keyboard"
    top = name.split("/")[0]
    return {"bach": "chorales", "mozart": "quartets", "haydn": "quartets",
            "beethoven": "quartets"}.get(top, "folk tunes")


def cross_validate(examples: Sequence[Example], l2: float, folds: int = FOLDS
                   ) -> np.ndarray:
    """Per example: the `parts` of the reading chosen when its piece was left out of fitting
    (meter right 1 + pickup right 2 + beat tempo right 4)."""
    pieces = sorted({e.name for e in examples})
    fold_of = {name: i % folds for i, name in enumerate(pieces)}
    parts = np.zeros(len(examples), dtype=int)
    for k in range(folds):
        scorer = fit([e for e in examples if fold_of[e.name] != k], l2, seed=0)
        held = [i for i, e in enumerate(examples) if fold_of[e.name] == k]
        for i, c in zip(held, chosen([examples[i] for i in held], scorer), strict=True):
            parts[i] = examples[i].parts[c]
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-source", type=int, default=120)
    parser.add_argument("--seeds", type=int, default=2, help="performances per excerpt")
    parser.add_argument("--cache", type=Path, default=None, help="features file (.npz)")
    parser.add_argument("--drop", default="", help="cues to leave out, comma-separated")
    parser.add_argument("--l2", default=str(L2), help="L2 penalties to cross-validate, "
                        "comma-separated")
    parser.add_argument("--durations", default="played",
                        help="performances read as played and/or as sounding (pedal "
                        "included), comma-separated; the shipped model: played only "
                        "(docs/score.md, session 8)")
    parser.add_argument("--write", action="store_true",
                        help=f"fit on all performances and write {MODEL_FILE.name}")
    args = parser.parse_args()
    cfg = ScoreConfig()
    modes = args.durations.split(",")
    if unknown := set(modes) - set(DURATIONS):
        parser.error(f"unknown --durations {sorted(unknown)}: choose from {DURATIONS}")
    examples = (load_examples(args.cache) if args.cache and args.cache.exists() else None) or []
    missing = [m for m in modes if m not in {e.durations for e in examples}]
    if missing:
        pieces = training_pieces(args.per_source)
        for mode in missing:
            examples += collect(pieces, args.seeds, cfg, mode)
        if args.cache:
            save_examples(args.cache, examples)
    examples = [e for e in examples if e.durations in modes]
    dropped = [FEATURES.index(f) for f in args.drop.split(",") if f]
    for e in examples:
        e.features[:, dropped] = 0.0
    usable = [e for e in examples if e.correct.any()]
    print(f"{len(examples)} performances, {len(usable)} with a correct reading among "
          f"the candidates")
    balance = meter_balance(usable)
    for l2 in (float(v) for v in args.l2.split(",")):
        parts = cross_validate(usable, l2)
        right = parts == ALL_RIGHT
        by_source = {src: float(np.mean([r for r, e in zip(right, usable, strict=True)
                                         if source(e.name) == src]))
                     for src in sorted({source(e.name) for e in usable})}
        by_meter = {m: float(np.mean([r for r, e in zip(right, usable, strict=True)
                                      if SUPPORTED[e.meter] == m])) for m in SUPPORTED}
        by_meter.update({mode: float(np.mean([r for r, e in zip(right, usable, strict=True)
                                             if e.durations == mode])) for mode in modes})
        print(f"l2 {l2:g}: {FOLDS}-fold cross-validated {right.mean():.3f} right "
              f"(meter {np.mean(parts & 1 > 0):.3f}, pickup {np.mean(parts & 2 > 0):.3f}, "
              f"beat tempo {np.mean(parts & 4 > 0):.3f}), {balance @ right:.3f} with every "
              "meter weighing the same; "
              + " ".join(f"{k} {v:.3f}" for k, v in {**by_source, **by_meter}.items()))
    if args.write:
        scorer = fit(usable, float(args.l2.split(",")[0]))
        print(f"fitted on all: {accuracy(usable, scorer):.3f} right; written (rows) x chosen "
              "meter:", " ".join(SUPPORTED))
        table = np.zeros((len(SUPPORTED), len(SUPPORTED)), dtype=int)
        for e, c in zip(usable, chosen(usable, scorer), strict=True):
            table[e.meter, e.meters[c]] += 1
        for name, row in zip(SUPPORTED, table, strict=True):
            print(f"  {name}: {row}")
        scorer.save()
        print(f"wrote {MODEL_FILE}")


if __name__ == "__main__":
    main()
