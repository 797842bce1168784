"""Fidelity of the score pipeline: humanised corpus pieces must come back as their written
score (`harmonynet_jax.score.fidelity`; figures and method in docs/score.md).

Floors are the lowest figures measured over seeds 0-3 (rounded down; session 9, the meter
scorer refitted with more quartets), not the targets of issue 7, which are higher: a drop
below them is a regression. Floors are only ever raised: the key floors keep earlier values.
Seed 0 is evaluated once for all tests.
"""

from __future__ import annotations

import pytest

from harmonynet_jax.score.fidelity import (
    HELD_OUT,
    PIECES,
    TUNING,
    Result,
    evaluate_all,
    evaluate_sounding,
    summary,
)

FLOORS = {"position": 0.91, "rhythm": 0.99, "duration": 0.96, "staff": 0.97, "key": 0.95,
          "meter": 0.81}
HELD_OUT_FLOORS = {"position": 0.88, "rhythm": 0.98, "duration": 0.95, "staff": 0.97, "key": 0.91,
                   "meter": 0.83}
# Right meter, pickup and bar positions on every seed tried (0-3): 3/8, 3/4, 4/4, 6/8 with
# and without pickups, chorales, a rag, a sonata, a song accompaniment, a 4/4 piano texture
# of running eighths (once read as 6/8), folk melodies.
EXACT = ("Mozart K545/1", "Joplin Maple Leaf", "Bach BWV 66.6", "Bach BWV 269",
         "Bach BWV 40.8", "Essen kinder 14", "Johnson Lift Every Voice", "Liliuokalani Aloha Oe",
         "Beach Prayer", "Essen kinder 24", "Essen kinder 34", "Essen kinder 35",
         "Essen kinder 22",  # kinder 22 (3/8): every seed since the bass cue (ninth round)
         # a 6/8 quartet opening with rests, a 3/4 polonaise of running eighths (once read
         # as 3/8 and 6/8): every seed since the session-7 meter scorer
         "R. Schumann Op.41/1 Scherzo", "C. Schumann Polonaise 3")
FOUR_PART = ("Bach BWV 66.6", "Bach BWV 269", "Bach BWV 40.8", "Johnson Lift Every Voice",
             "Haydn Op.74/1 Menuet")
# Staff right on every seed tried (0-3): a quartet's violas followed through the cello's
# rests and below its double stops (Scherzo: 90.9-93.5 before, 95.3-96.1 after), one note a
# hand when the other hand is free (Beach), and arpeggios over a pedalled bass left in the
# left hand (op. 17/3: 86.5-88.5 before, 92.5-93.5 after), the right hand crossing under
# the left hand's repeated triads to the bass (Polonaise: 93.4 before, 99.6 after, session 8).
STAFF_FLOORS = {"R. Schumann Op.41/1 Scherzo": 0.95, "Beach Prayer": 0.97,
                "C. Schumann Op.17/3": 0.92, "C. Schumann Polonaise 3": 0.99}


@pytest.fixture(scope="module")
def results() -> dict[str, Result]:
    return {r.piece: r for r in evaluate_all(PIECES, seed=0)}


def test_the_set_is_large_and_varied() -> None:
    assert len(PIECES) >= 16 and len(HELD_OUT) >= 6 and TUNING
    features = " ".join(p.features for p in PIECES)
    for needed in ("2/4", "3/4", "4/4", "6/8", "3/8", "pickup", "triplets"):
        assert features.count(needed) >= 2, needed


def test_overall_figures_hold(results: dict[str, Result]) -> None:
    got = summary(list(results.values()))
    assert all(got[k] >= v for k, v in FLOORS.items()), got


def test_held_out_pieces_hold(results: dict[str, Result]) -> None:
    got = summary([results[p.name] for p in HELD_OUT])
    assert all(got[k] >= v for k, v in HELD_OUT_FLOORS.items()), got


@pytest.mark.parametrize("name", EXACT)
def test_piece_comes_back_in_its_meter(results: dict[str, Result], name: str) -> None:
    r = results[name]
    assert r.meter_ok, (r.meter, r.ref_meter)
    assert r.position >= 0.97 and r.duration >= 0.89, r


@pytest.mark.parametrize("name", FOUR_PART)
def test_four_part_writing_keeps_tenor_and_bass_below(results: dict[str, Result],
                                                      name: str) -> None:
    assert results[name].staff >= 0.97


@pytest.mark.parametrize("name", sorted(STAFF_FLOORS))
def test_voices_stay_on_their_staff(results: dict[str, Result], name: str) -> None:
    assert results[name].staff >= STAFF_FLOORS[name]


def test_keys_come_back(results: dict[str, Result]) -> None:
    wrong = [(r.piece, r.key, r.ref_key) for r in results.values() if not r.key_ok]
    # BWV 40.8 is in F minor written with three flats (a "Dorian" signature): a convention
    # the estimator does not reproduce (docs/score.md).
    assert [w[0] for w in wrong] in ([], ["Bach BWV 40.8"]), wrong


# Sounding durations (the frame decoder's notes: pedal included, no pedal spans), on seed 0:
# an Alberti bass under a melody, a drone under a moving melody, two voices a hand (Beach:
# staff 74.7 before the repeated-dyad cut of session 8, 89.9 after) (no audio: ~10 s).
SOUNDING_FLOORS = {"Mozart K545/1": (0.93, 0.99), "Chopin Mazurka 6/2": (0.90, 0.85),
                   "Beach Prayer": (0.55, 0.89)}


@pytest.mark.parametrize("name", sorted(SOUNDING_FLOORS))
def test_sounding_durations_are_written_back(name: str) -> None:
    piece = next(p for p in PIECES if p.name == name)
    r = evaluate_sounding(piece, seed=0)
    duration, staff = SOUNDING_FLOORS[name]
    assert r.position >= 0.97 and r.duration >= duration and r.staff >= staff, r
