"""Units of harmonynet_jax.score: written values, spelling, tempo tracking, triplets,
the performance model and the fidelity metric itself."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
from music21 import key

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.durations import split_values
from harmonynet_jax.score.events import Note
from harmonynet_jax.score.fidelity import PIECES, Written, compare, reference
from harmonynet_jax.score.keys import spell, spelling_table
from harmonynet_jax.score.meter import parse_time_signature
from harmonynet_jax.score.performance import Humanizer, perform
from harmonynet_jax.score.pipeline import analyze
from harmonynet_jax.score.tempo import BeatGrid, candidate_periods, onset_envelope, onset_groups

FOUR = parse_time_signature("4/4")
SIX_EIGHT = parse_time_signature("6/8")
NONE: frozenset[F] = frozenset()


def test_written_values_show_the_beat() -> None:
    assert split_values(F(0), F(4), F(0), FOUR, NONE) == [F(4)]
    assert split_values(F(0), F(3, 2), F(0), FOUR, NONE) == [F(3, 2)]  # dotted quarter
    assert split_values(F(1), F(3), F(0), FOUR, NONE) == [F(1), F(1)]  # not over beat 3
    assert split_values(F(1, 2), F(3, 2), F(0), FOUR, NONE) == [F(1, 2), F(1, 2)]
    assert split_values(F(1, 4), F(1), F(0), FOUR, NONE) == [F(3, 4)]  # inside a beat
    assert split_values(F(0), F(3), F(0), SIX_EIGHT, NONE) == [F(3)]
    assert split_values(F(0), F(2), F(0), SIX_EIGHT, NONE) == [F(3, 2), F(1, 2)]
    assert split_values(F(1, 2), F(3, 2), F(0), SIX_EIGHT, NONE) == [F(1)]  # eighth-quarter
    triplet_beat = frozenset({F(1)})
    assert split_values(F(1), F(5, 3), F(0), FOUR, triplet_beat) == [F(2, 3)]
    assert split_values(F(5, 3), F(3), F(0), FOUR, triplet_beat) == [F(1, 3), F(1)]


def test_spelling_follows_the_key() -> None:
    e_flat = spelling_table(key.Key("E-"))
    assert spell(63, e_flat).nameWithOctave == "E-4"
    assert spell(70, e_flat).nameWithOctave == "B-4"
    a_minor = spelling_table(key.Key("a"))
    assert spell(68, a_minor).nameWithOctave == "G#4"  # raised seventh
    assert spell(65, spelling_table(key.Key("f#"))).nameWithOctave == "E#4"
    b_major = spelling_table(key.Key("B"))
    assert spell(63, b_major).nameWithOctave == "D#4"
    assert spell(60, spelling_table(key.Key("C#"))).nameWithOctave == "B#3"


def test_tempo_candidates_find_the_pulse_under_drift() -> None:
    cfg = ScoreConfig()
    h = Humanizer(bpm=96, seed=3)
    written = [(float(q), float(q) + 1.0, 60 + (q % 7), 1) for q in range(32)]
    played, _ = perform(written, h)
    groups = onset_groups([Note(*n) for n in played], cfg)
    periods = candidate_periods(onset_envelope(groups, cfg), cfg)
    assert any(abs(p - 60 / 96) < 0.06 for p in periods)


def test_beat_grid_round_trips() -> None:
    grid = BeatGrid(np.array([0.0, 0.5, 1.1, 1.8]))
    t = np.array([-0.25, 0.3, 1.5, 2.5])
    assert np.allclose(grid.to_seconds(grid.to_beats(t)), t)


def test_triplets_only_where_a_beat_fits_them() -> None:
    beat = 0.6
    written = [(0, 1), (1, 1 / 3), (4 / 3, 1 / 3), (5 / 3, 1 / 3), (2, 0.5), (2.5, 0.5), (3, 1)]
    notes = []
    for bar in range(4):
        for q, d in written:
            t = (bar * 4 + q) * beat
            notes.append((t, t + d * beat * 0.9, 72 - int(q * 2), 70))
    # The meter is given: this test is about triplets (meter estimation: fidelity tests).
    score, info = analyze(notes, time_signature="4/4")
    durations = sorted({F(n.duration.quarterLength).limit_denominator(12)
                        for n in score.recurse().notes})
    assert F(1, 3) in durations and F(1, 2) in durations
    tuplets = [n for n in score.recurse().notes if n.duration.tuplets]
    assert len(tuplets) == 3 * 4  # exactly the triplet beats, never the eighths
    assert info.time_signature == "4/4"


def test_performance_model_is_seeded_and_humanised() -> None:
    written = [(float(q), float(q) + 1.0, 60, 1) for q in range(16)]
    a, _ = perform(written, Humanizer(bpm=120, seed=1))
    b, _ = perform(written, Humanizer(bpm=120, seed=1))
    c, _ = perform(written, Humanizer(bpm=120, seed=2))
    assert a == b and a != c
    iois = np.diff([n[0] for n in a])
    assert iois.std() > 0.005  # not a metronome
    assert iois[-3:].mean() > iois[:3].mean()  # ritardando at the end
    assert all(off > on for on, off, _, _ in a)


def test_fidelity_metric_counts_errors() -> None:
    piece = PIECES[0]
    ref_score, ref = reference(piece)
    assert compare(ref_score, ref, ref_score) == (1.0, 1.0, 1.0)
    shifted = [Written(n.pitch, n.start, n.end, 3 - n.staff) for n in ref]
    assert compare(ref_score, shifted, ref_score)[2] == 0.0
