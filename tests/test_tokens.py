"""The token contract: golden cases shared with `cargo test`, and the round trip of whole
performances through segments, tokens and stitching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmonynet_jax import tokens as T

GOLDEN = json.loads((Path(__file__).parent / "data" / "tokens_golden.json").read_text())


def rounded(rows) -> list[list[float]]:
    return [[round(float(x), 6) for x in row] for row in rows]


def test_vocab_comes_from_rust_and_is_consistent():
    v = T.VOCAB
    assert GOLDEN["vocab_size"] == v.size
    assert len(v.names) == v.size
    assert v.pad == 0
    assert v.name(v.time(0)) == "TIME(0)"
    assert v.name(v.velocity(0)) == "VELOCITY(0)"
    assert v.name(v.note(21)) == "NOTE(21)" and v.name(v.note(108)) == "NOTE(108)"
    assert v.note_offset + v.num_pitches == v.size
    assert v.samples_per_step * v.steps_per_second == v.sample_rate
    assert len(v.bin_velocity) == v.num_velocity and v.bin_velocity[0] == 0
    assert all(a < b for a, b in zip(v.bin_velocity[1:], v.bin_velocity[2:], strict=False))


def test_golden_file_has_the_required_cases():
    names = {c["name"] for c in GOLDEN["cases"]}
    assert len(names) >= 30
    for required in ("empty segment", "tie from previous segment", "pedal tied",
                     "same pitch restrike overlap", "velocity extremes", "note at last step"):
        assert required in names


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: c["name"])
def test_golden_encode(case):
    tokens = T.encode(case["notes"], case["pedals"], case["start"], case["steps"])
    assert T.names(tokens) == case["tokens"]


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: c["name"])
def test_golden_decode(case):
    ids = [T.VOCAB.token(name) for name in case["tokens"]]
    events = T.decode_segment(ids)
    assert events.errors == 0
    notes, pedals = T.decode(ids, case["steps"])
    assert rounded(notes) == case["decoded_notes"]
    assert rounded(pedals) == case["decoded_pedals"]


def test_decode_skips_and_counts_grammar_errors():
    v = T.VOCAB
    seq = [v.tie_end, v.note(60), v.time(5), v.time(3), v.velocity(0), v.note(61),
           v.velocity(20), v.note(62), v.pedal_off, v.eos, v.note(70)]
    events = T.decode_segment(seq)
    # NOTE before any TIME, backwards TIME, off of a silent key, PEDAL_OFF while up.
    assert events.errors == 4
    notes, _ = T.decode(seq, 10)
    assert [(n.pitch, n.onset, n.offset) for n in notes] == [(62, 0.05, 0.1)]


def test_encode_rejects_bad_arguments():
    with pytest.raises(ValueError):
        T.encode([], [], 0.0, 0)
    with pytest.raises(ValueError):
        T.encode([], [], 0.0, T.VOCAB.num_time + 1)
    with pytest.raises(ValueError):
        T.encode(np.zeros((2, 3)), [], 0.0, 10)
    with pytest.raises(ValueError):
        T.steps_for(2.005)
    assert T.steps_for(2.0) == 200


performances = st.integers(0, 2**32 - 1).map(np.random.default_rng)


def random_performance(rng: np.random.Generator):
    n = int(rng.integers(0, 60))
    onsets = rng.uniform(0, 12, n)
    durations = rng.choice([rng.exponential(0.4), 0.004, 0.01, 3.0], n)
    notes = np.stack([onsets, onsets + durations, rng.integers(18, 112, n),
                      rng.integers(0, 128, n)], 1)
    m = int(rng.integers(0, 6))
    pedal_on = np.sort(rng.uniform(0, 12, m))
    pedals = np.stack([pedal_on, pedal_on + rng.exponential(1.0, m)], 1)
    return notes, pedals


@settings(max_examples=150, deadline=None)
@given(performances, st.sampled_from([37, 100, 200, 512]))
def test_round_trip_through_segments_is_exact_on_the_grid(rng, steps):
    notes, pedals = random_performance(rng)
    segments = [T.decode_segment(s) for s in T.encode_performance(notes, pedals, steps)]
    assert all(s.errors == 0 for s in segments)
    got_notes, got_pedals = T.stitch(segments, steps)
    want_notes, want_pedals = T.normalize(notes, pedals)
    assert rounded(got_notes) == rounded(want_notes)
    assert rounded(got_pedals) == rounded(want_pedals)


@pytest.mark.parametrize("steps", [37, 100, 200, 512])
def test_a_short_note_on_the_last_grid_step_gets_its_segment(steps):
    # 11.997-12.001 s lies on step 1200 and lasts one step: the segments must reach 12.01 s
    # (found by the round-trip property above).
    notes = np.array([[11.997, 12.001, 76, 114], [1.0, 2.0, 60, 80]])
    segments = [T.decode_segment(s) for s in T.encode_performance(notes, None, steps)]
    got, _ = T.stitch(segments, steps)
    assert rounded(got) == rounded(T.normalize(notes)[0])
