"""A small fidelity check: humanised corpus pieces must come back as their written score."""

from __future__ import annotations

import pytest

from harmonynet_jax.score.fidelity import PIECES, evaluate

SMALL_SET = ("Mozart K545/1", "Bach BWV 66.6", "Essen kinder 1")


@pytest.mark.parametrize("name", SMALL_SET)
def test_piece_comes_back(name: str) -> None:
    piece = next(p for p in PIECES if p.name == name)
    r = evaluate(piece, seed=0)
    assert r.meter_ok, (r.meter, r.ref_meter)
    assert r.key_ok, (r.key, r.ref_key)
    assert r.position >= 0.97
    assert r.duration >= 0.90
    assert r.staff >= 0.88
