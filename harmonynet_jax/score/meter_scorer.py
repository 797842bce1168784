"""The meter model's scorer: which reading of a performance (`meter.hypotheses`) is right.

Each reading is described by the cues of `meter.FEATURES`. Two kinds of experts score it and
their scores are summed (a product of experts: the reading's probabilities multiply):
  - a log-linear model, score = u . std(x), where std() standardises each cue with the
    training set's mean and spread: robust, but it cannot express that a cue matters only
    together with another (notes per beat tell 2/4 from 4/4 in a song, not in a chorale);
  - `ENSEMBLE` small networks with one hidden layer over both std(x) and std(x) minus its
    mean over the performance's readings (where a reading stands among its rivals):
        score = w . z + v . tanh(W z + b),  z = [std(x), std(x) - mean over readings].
    One network's choice on a few pieces depends on its initialisation, the sum's much less.
The log-linear expert is scaled so that its scores spread as much as the networks' summed
scores over the training readings, so neither kind decides alone. The highest score wins.

The parameters live in `meter_model.json` beside this file (written by
`python -m harmonynet_jax.score.meter_training --write`), with the cue names they were fitted
on, so a changed `FEATURES` list is caught at load time instead of scoring garbage.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float

MODEL_FILE = Path(__file__).with_name("meter_model.json")
PARAMS = ("w", "W", "b", "v")  # per network: linear weights, hidden weights, biases, output


def model_inputs(x: Float[np.ndarray, "readings cues"], mean: np.ndarray, std: np.ndarray,
                 xp: Any = np) -> Float[np.ndarray, "readings inputs"]:
    """The network's inputs for the readings of one performance (see the module docstring)."""
    z = (x - mean) / std
    return xp.concatenate([z, z - z.mean(axis=0, keepdims=True)], axis=1)


def network_scores(params: dict[str, Any], z: Float[np.ndarray, "readings inputs"],
                   xp: Any = np) -> Float[np.ndarray, " readings"]:
    """One network's score per reading; `xp` is numpy here and jax.numpy when fitting."""
    return z @ params["w"] + xp.tanh(z @ params["W"] + params["b"]) @ params["v"]


@dataclass(frozen=True)
class MeterScorer:
    """The fitted ensemble and the standardisation it was fitted with."""

    features: tuple[str, ...]
    mean: np.ndarray  # [cues]
    std: np.ndarray  # [cues]
    linear: np.ndarray  # [cues]: the log-linear expert's weights on std(x), scaled
    models: tuple[dict[str, np.ndarray], ...]  # the networks

    def scores(self, x: Float[np.ndarray, "readings cues"]) -> Float[np.ndarray, " readings"]:
        """Summed expert scores per reading of one performance (higher is better)."""
        z = model_inputs(np.asarray(x, dtype=float), self.mean, self.std)
        linear = z[:, :len(self.linear)] @ self.linear
        return sum((network_scores(m, z) for m in self.models), linear)

    def save(self, path: Path = MODEL_FILE) -> None:
        data = {"features": list(self.features), "mean": self.mean.tolist(),
                "std": self.std.tolist(), "linear": np.round(self.linear, 6).tolist(),
                "models": [{k: np.round(m[k], 6).tolist() for k in PARAMS}
                           for m in self.models]}
        path.write_text(json.dumps(data, separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: Path = MODEL_FILE, features: tuple[str, ...] | None = None
             ) -> MeterScorer:
        """Read a model file; `features` (the cues the caller computes) must match it."""
        data = json.loads(Path(path).read_text())
        names = tuple(data["features"])
        if features is not None and names != tuple(features):
            raise ValueError(f"{path} was fitted on other meter cues than the code computes; "
                             "refit it: python -m harmonynet_jax.score.meter_training --write")
        return cls(names, np.array(data["mean"]), np.array(data["std"]), np.array(data["linear"]),
                   tuple({k: np.array(m[k]) for k in PARAMS} for m in data["models"]))


@functools.cache
def bundled_scorer(features: tuple[str, ...]) -> MeterScorer:
    """The shipped model, read once per process."""
    return MeterScorer.load(MODEL_FILE, features)
