"""The meter scorer (`score.meter_scorer`) and its fitting (`score.meter_training`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score import fidelity
from harmonynet_jax.score.meter import FEATURES
from harmonynet_jax.score.meter_scorer import MODEL_FILE, MeterScorer, bundled_scorer
from harmonynet_jax.score.meter_training import (
    PEDAL_PERIODS_Q,
    Example,
    accuracy,
    fit,
    load_examples,
    make_example,
    pedal_changes,
    save_examples,
)


def _examples(n: int, rng: np.random.Generator, readings: int = 6) -> list[Example]:
    """Random cues; in each performance the right reading is the one with cue 0 lowest."""
    out = []
    for i in range(n):
        x = rng.normal(size=(readings, len(FEATURES)))
        right = i % readings
        x[:, 0] = np.abs(x[:, 0])
        x[right, 0] = -1.5
        correct = np.arange(readings) == right
        out.append(Example(f"e{i}", x, correct, np.where(correct, 7, 0),
                           np.zeros(readings, dtype=int), 0))
    return out


def test_fit_learns_the_right_reading_on_held_out_performances() -> None:
    rng = np.random.default_rng(0)
    train, test = _examples(120, rng), _examples(60, rng)
    scorer = fit(train, networks=2)
    assert accuracy(test, scorer) > 0.9
    # Each expert alone learns it too: the networks (linear expert zeroed) and the linear one.
    assert accuracy(test, replace(scorer, linear=np.zeros_like(scorer.linear))) > 0.9
    assert accuracy(test, fit(train, networks=0)) > 0.9
    # An unfitted scorer (all weights zero) picks the first reading: right 1 time in 6.
    zero = MeterScorer(FEATURES, scorer.mean, scorer.std, np.zeros_like(scorer.linear),
                       ({k: np.zeros_like(v) for k, v in scorer.models[0].items()},))
    assert accuracy(test, zero) < 0.3


def test_linear_expert_is_scaled_to_the_networks_spread() -> None:
    rng = np.random.default_rng(2)
    examples = _examples(60, rng)
    scorer = fit(examples, networks=1)
    linear_only = replace(scorer, models=())
    networks_only = replace(scorer, linear=np.zeros_like(scorer.linear))
    spread = [np.mean([s.scores(e.features).std() for e in examples])
              for s in (linear_only, networks_only)]
    assert spread[0] == pytest.approx(spread[1], rel=1e-6)


def test_model_file_round_trip_and_feature_check(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    scorer = fit(_examples(30, rng), networks=1)
    path = tmp_path / "meter_model.json"
    scorer.save(path)
    back = MeterScorer.load(path, FEATURES)
    x = rng.normal(size=(9, len(FEATURES)))
    np.testing.assert_allclose(back.scores(x), scorer.scores(x), atol=1e-4)
    with pytest.raises(ValueError, match="refit"):
        MeterScorer.load(path, FEATURES[:-1])


def test_bundled_model_matches_the_cues_the_code_computes() -> None:
    """The shipped `meter_model.json` was fitted on today's `FEATURES` and scores readings."""
    assert MODEL_FILE.exists()
    scorer = bundled_scorer(FEATURES)
    assert len(scorer.models) >= 1
    assert np.isfinite(scorer.scores(np.zeros((3, len(FEATURES))))).all()


def test_sounding_pedal_changes_ignore_the_meter() -> None:
    """Sounding training examples change the pedal on a steady grid of its own (or never),
    so the scorer cannot learn the fidelity performances' change at every barline."""
    rng = np.random.default_rng(3)
    seen = [pedal_changes(24.0, rng) for _ in range(200)]
    assert any(not c for c in seen)
    periods = set()
    for changes in (c for c in seen if c):
        steps = np.diff(changes[1:])
        assert changes[0] == 0.0 and len(set(steps)) <= 1
        periods.update(steps)
    assert periods == set(PEDAL_PERIODS_Q)
    assert {c[1] % 4 for c in seen if len(c) > 1} == {0, 1, 2, 3}  # phases too


@pytest.mark.parametrize("durations", ["played", "sounding"])
def test_training_example_from_a_corpus_excerpt(durations: str, tmp_path: Path) -> None:
    """A humanised excerpt yields readings with the written one among them, in both modes,
    and the features cache keeps what each example was read as."""
    piece = next(p for p in fidelity.PIECES if p.name == "Essen kinder 24")
    ex = make_example(piece, 0, ScoreConfig(), durations)
    assert ex is not None and ex.durations == durations
    assert ex.features.shape[1] == len(FEATURES) and ex.correct.any()
    save_examples(tmp_path / "cache.npz", [ex])
    (back,) = load_examples(tmp_path / "cache.npz")
    assert back.durations == durations
    np.testing.assert_array_equal(back.features, ex.features)
