"""Units of harmonynet_jax.score: written values, spelling, tempo tracking, triplets,
the performance model and the fidelity metric itself."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest
from music21 import expressions, key, meter, note, stream

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.durations import split_values
from harmonynet_jax.score.events import Note, normalize_notes
from harmonynet_jax.score.fidelity import (
    PIECES,
    Drift,
    Performed,
    Written,
    compare,
    part_notes,
    reference,
)
from harmonynet_jax.score.hands import (
    _gap_costs,
    _held_costs,
    _idle_costs,
    _split_costs,
    sounding,
    split_hands,
)
from harmonynet_jax.score.keys import enharmonic_choice, estimate_key, spell, spelling_table
from harmonynet_jax.score.meter import (
    THREE_EIGHT_SIMPLE,
    bar_period,
    bass_line,
    bass_period,
    bass_similarity,
    downbeat_gain,
    harmonic_novelty,
    parse_time_signature,
)
from harmonynet_jax.score.parts import four_part_texture, match_voices, split_four_part
from harmonynet_jax.score.performance import Humanizer, perform, tempo_map
from harmonynet_jax.score.pipeline import analyze
from harmonynet_jax.score.quantize import QNote, _snap_release, legato_fill
from harmonynet_jax.score.tempo import (
    BeatGrid,
    OnsetAnalysis,
    PulseSalience,
    candidate_periods,
    onset_envelope,
    onset_groups,
    refine_beats,
    track_beats,
    track_pulse,
)

FOUR = parse_time_signature("4/4")
SIX_EIGHT = parse_time_signature("6/8")
NONE: frozenset[F] = frozenset()


def played_bars(written, beat: float, slope: int, bars: int = 4) -> list[tuple]:
    """Four 4/4 bars of (quarter offset, quarter length) notes played at `beat` s, released
    at 90 %, pitch falling `slope` semitones a quarter (so every note has its own pitch)."""
    notes = []
    for bar in range(bars):
        for q, d in written:
            t = (bar * 4 + q) * beat
            notes.append((t, t + d * beat * 0.9, 72 - int(q * slope), 70))
    return notes


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


def test_slower_levels_start_on_every_phase() -> None:
    """Every third beat from phase 0, 1 or 2: three different grids (a 6/8 downbeat may be
    any eighth of the tracked pulse)."""
    grid = BeatGrid(np.arange(12) * 0.5)
    firsts = set()
    for phase in range(3):
        merged = grid.merged(3, phase).times
        assert np.allclose(np.diff(merged), 1.5)
        firsts.add(round(float(merged[merged >= 0][0]) / 0.5) % 3)
    assert firsts == {0, 1, 2}


def test_triplets_only_where_a_beat_fits_them() -> None:
    beat = 0.6
    written = [(0, 1), (1, 1 / 3), (4 / 3, 1 / 3), (5 / 3, 1 / 3), (2, 0.5), (2.5, 0.5), (3, 1)]
    notes = played_bars(written, beat, slope=2)
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


def test_a_stronger_drift_swings_the_tempo_further() -> None:
    """`--drift` performs the same notes with a wider tempo wave: the beat periods spread
    further (the excerpt's ritardando aside); a malformed option is refused in plain words."""
    piece = next(p for p in PIECES if p.name == "Bach BWV 40.8")

    def quarter_spread(p: Performed) -> float:
        first = min(n.start for n in p.ref)
        starts = sorted({float(n.start - first) for n in p.ref})
        onsets: list[float] = []
        for t in sorted(n[0] for n in p.played):  # chords: one onset per written start
            if not onsets or t - onsets[-1] > 0.06:
                onsets.append(t)
        quarters = np.array([o for s, o in zip(starts, onsets, strict=False)
                             if s == int(s) and s < 16])
        return float(np.std(np.diff(quarters) / np.median(np.diff(quarters))))

    calm, swung = Performed.of(piece, 0), Performed.of(piece, 0, Drift(0.15, 8.0))
    assert [n[2] for n in calm.played] == [n[2] for n in swung.played]
    assert quarter_spread(swung) > 2 * quarter_spread(calm)
    assert Drift.parse("0.15,8") == Drift(0.15, 8.0)
    with pytest.raises(ValueError, match="AMOUNT,PERIOD"):
        Drift.parse("0.15")


def test_the_looser_tracker_takes_over_where_the_smooth_one_slips() -> None:
    """Under a tempo wave of +-15 % over 8 quarters the smooth tracker slips off the
    Mazurka's quarters; its beats are replaced by the looser tracker's, which stay on them."""
    cfg = ScoreConfig()
    piece = next(p for p in PIECES if p.name == "Chopin Mazurka 6/2")
    p = Performed.of(piece, 0, Drift(0.15, 8.0))
    # the performance's own tempo map (its first random draw is the wave's phase)
    length = max(float(n.end) for n in p.ref)
    qs, ts = tempo_map(length, Humanizer(bpm=piece.bpm, seed=0, drift=0.15,
                                         drift_period_q=8.0), np.random.default_rng(0))
    notes = normalize_notes(p.played, cfg.min_note_seconds)
    onsets = OnsetAnalysis.of(notes, cfg)
    period = candidate_periods(onsets.envelope, cfg)[0]
    span = (notes[0].onset, float(onsets.groups.times[-1]))

    def on_quarters(beats: np.ndarray) -> float:
        q = np.interp(beats, ts, qs)
        return float(np.mean(np.abs(q - np.round(q)) < 0.15))

    smooth = refine_beats(track_beats(onsets.envelope, period, span, cfg), onsets.groups, cfg)
    assert on_quarters(smooth) < 0.8
    assert on_quarters(track_pulse(onsets.envelope, onsets.groups, period, span, cfg)) > 0.95


def test_fidelity_metric_counts_errors() -> None:
    piece = PIECES[0]
    ref_score, ref = reference(piece)
    assert compare(ref_score, ref, ref_score) == (1.0, 1.0, 1.0, 1.0)
    swapped = [Written(n.pitch, n.start, n.end, 3 - n.staff) for n in ref]
    assert compare(ref_score, swapped, ref_score).staff == 0.0


def test_rhythm_share_forgives_a_shifted_barline_but_position_does_not() -> None:
    """Written one beat later in the bar (same notes, same rhythm): every bar position is
    wrong, the rhythm counted from the first note is not."""
    piece = next(p for p in PIECES if p.name == "Mozart K545/1")
    ref_score, ref = reference(piece)
    shifted_score = stream.Score([stream.Part([stream.Measure([meter.TimeSignature("4/4"),
                                                               note.Rest(quarterLength=1)])])])
    part = shifted_score.parts[0]
    for n in ref:
        part.insert(float(n.start) + 1.0, note.Note(n.pitch, quarterLength=float(n.end - n.start)))
    part.makeMeasures(inPlace=True)
    shares = compare(ref_score, [Written(n.pitch, n.start, n.end, 1) for n in ref], shifted_score)
    assert shares.rhythm > 0.95
    assert shares.position < 0.05


def _bars(ts: str, *bars: list[tuple[str, float]]) -> stream.Score:
    """A one-part score of measures (pitch name or "r" for a rest, quarter length)."""
    part = stream.Part()
    for i, content in enumerate(bars):
        m = stream.Measure(number=i)
        if i == 0:
            m.append(meter.TimeSignature(ts))
        for name, ql in content:
            m.append(note.Rest(quarterLength=ql) if name == "r"
                     else note.Note(name, quarterLength=ql))
        part.append(m)
    return stream.Score([part])


def test_a_pickup_bar_equals_a_first_bar_opening_with_rests() -> None:
    """The same music written with a pickup bar and with a full first bar of rests: bars
    are counted from the bar of the first note, so both come back at the right position."""
    full = _bars("3/4", [("r", 2), ("G4", 1)], [("C5", 1), ("E5", 1), ("G5", 1)], [("C5", 3)])
    pickup = _bars("3/4", [("G4", 1)], [("C5", 1), ("E5", 1), ("G5", 1)], [("C5", 3)])
    notes = part_notes(full.parts[0], 1)
    assert compare(full, notes, pickup).position == 1.0
    early = _bars("3/4", [("r", 1), ("G4", 1), ("C5", 1)], [("E5", 1), ("G5", 1), ("C5", 1)],
                  [("C5", 2), ("r", 1)])
    assert compare(full, notes, early).position < 0.5  # a beat early is still wrong


def test_key_mode_and_enharmonic_spelling_follow_the_pitches() -> None:
    """C-sharp minor (E natural, B-sharp leading tone) is not C-sharp/D-flat major, and a
    D-flat major scale is written with five flats rather than seven sharps."""
    cfg = ScoreConfig()
    c_sharp_minor = [61, 63, 64, 66, 68, 69, 72, 73, 68, 61, 56, 61]
    notes = [(F(i), p, F(1)) for i, p in enumerate(c_sharp_minor)]
    k = estimate_key(notes, cfg)
    assert (k.tonic.name, k.mode, k.sharps) == ("C#", "minor", 4)
    d_flat_major = [61, 63, 65, 66, 68, 70, 72, 73, 68, 65, 61, 49]
    k = estimate_key([(F(i), p, F(1)) for i, p in enumerate(d_flat_major)], cfg)
    assert k.sharps == -5 and k.mode == "major"
    assert enharmonic_choice(key.Key("C#"), [1, 3, 5, 6, 8, 10, 0]).sharps == -5
    assert enharmonic_choice(key.Key("B"), [11, 1, 3, 4, 6, 8, 10]).sharps == 5  # not C-flat


def test_four_part_texture_puts_tenor_and_bass_on_the_lower_staff() -> None:
    """A chorale whose tenor sits an octave and more above the bass (no hand spans that):
    the piano-reduction convention still writes S+A above and T+B below."""
    cfg = ScoreConfig()
    chords = [(43, 59, 62, 67), (48, 60, 64, 67), (47, 62, 67, 74), (45, 60, 64, 72),
              (43, 59, 62, 67), (50, 62, 66, 69), (43, 59, 62, 67), (48, 64, 67, 72)]
    notes = [Note(0.6 * i + 0.004 * v, 0.6 * i + 0.55, p, 70)
             for i, chord in enumerate(chords) for v, p in enumerate(chord)]
    notes.append(Note(0.6 * 8, 0.6 * 8 + 0.25, 64, 70))  # a short tenor note...
    notes += [Note(0.6 * 8, 0.6 * 9.9, p, 70) for p in (48, 67, 72)]  # ...in a long chord
    notes.sort()
    staves = split_hands(notes, cfg)
    by_onset: dict[int, list[tuple[int, int]]] = {}
    for n, staff in zip(notes, staves, strict=True):
        by_onset.setdefault(round(n.onset / 0.6), []).append((n.pitch, staff))
    for i, chord in enumerate(chords):
        got = sorted(by_onset[i])
        assert got == list(zip(chord, (2, 2, 1, 1), strict=True)), (i, got)
    assert sorted(by_onset[8]) == [(48, 2), (64, 2), (67, 1), (72, 1)]


def test_a_free_hand_shares_the_chord() -> None:
    """Bass and melody alternate with an inner pair (one note a hand, as in Beach's Prayer):
    the left hand played the chord before and holds nothing, so it takes the lower note of the
    pair instead of leaving both to the right hand."""
    pairs = [(55, 72), (60, 63), (55, 74), (62, 65)] * 2
    notes = [Note(0.4 * i + 0.005 * j, 0.4 * i + 0.36, p, 70)
             for i, pair in enumerate(pairs) for j, p in enumerate(pair)]
    assert split_hands(notes, ScoreConfig()) == [2, 1] * len(pairs)
    no_cost = ScoreConfig(idle_hand_cost=0.0)
    assert split_hands(notes, no_cost) != [2, 1] * len(pairs)


def test_the_right_hand_crosses_under_the_left_hands_repeated_chord() -> None:
    """A Polonaise's afterbeat triads A3-D4-F4 in the left hand under a melody, then the
    right hand leaps to D3 and D2 while the left hand strikes its triad again: the triad
    stays whole in the left hand and the low notes are the right hand's (they lie beyond the
    left hand's reach under its triad). Without the crossing the split cuts the triad."""
    triad = (57, 62, 65)
    groups = [(*triad, 77), (*triad, 89), (*triad, 77), (50, *triad), (38, *triad),
              (53,), (55, 59, 62, 67)]
    notes = [Note(0.3 * i + 0.004 * v, 0.3 * i + 0.27, p, 70)
             for i, chord in enumerate(groups) for v, p in enumerate(sorted(chord))]
    want = [1 if p in (77, 89, 67, 50, 38) else 2 for n in notes for p in [n.pitch]]
    assert split_hands(notes, ScoreConfig()) == want
    never = ScoreConfig(hand_cross_cost=-1.0)
    assert split_hands(notes, never) != want


def test_part_writing_follows_the_voices_through_rests() -> None:
    """A quartet whose cello rests: the viola stays on the lower staff although it is now the
    lowest of three voices that all lie above the last full sonority's middle."""
    assert match_voices(np.array([60.0, 64.0, 69.0]), np.array([45.0, 52.0, 60.0, 64.0])) == (
        1, 2, 3)
    assert match_voices(np.array([45.0, 64.0, 67.0]), np.array([45.0, 52.0, 60.0, 64.0])) == (
        0, 2, 3)
    chords = [(45, 52, 60, 64), (45, 52, 60, 64), (60, 64, 69), (59, 64, 68), (62, 65, 71),
              (45, 52, 60, 64)]
    notes = [Note(0.5 * i + 0.004 * v, 0.5 * i + 0.45, p, 70)
             for i, chord in enumerate(chords) for v, p in enumerate(chord)]
    groups = [[k for k, n in enumerate(notes) if round(n.onset / 0.5) == i]
              for i in range(len(chords))]
    staves = split_four_part(notes, groups, sounding(notes, groups))
    assert [staves[g[0]] for g in groups] == [2] * len(chords)  # bass, then viola alone
    assert [staves[g[1]] for g in groups[2:5]] == [1, 1, 1]


def test_double_stops_go_below_the_two_highest_voices() -> None:
    """A quartet's cello double stop A2-E3 under the viola's F4 and the violins' A4 and D5
    (five notes): the two highest are the soprano and alto, everything below them is the
    lower staff, also when the voices followed so far would put the boundary lower."""
    chords = [(45, 52, 60, 64), (60, 64, 69), (45, 52, 65, 69, 74)]
    notes = [Note(0.5 * i + 0.004 * v, 0.5 * i + 0.45, p, 70)
             for i, chord in enumerate(chords) for v, p in enumerate(chord)]
    groups = [[k for k, n in enumerate(notes) if round(n.onset / 0.5) == i]
              for i in range(len(chords))]
    staves = split_four_part(notes, groups, sounding(notes, groups))
    assert [staves[k] for k in groups[2]] == [2, 2, 2, 1, 1]


def test_a_held_bass_is_not_a_second_voice() -> None:
    """D3 held under a G3-B3-D4 afterbeat triad: the bass costs nothing wherever the boundary
    lies (the left hand holds it under what it plays), a held inner note still does; a single
    note within reach above the held bass is a second voice, one a hand span above is not
    (the pedal holds the bass)."""
    cfg = ScoreConfig()
    bounds = np.arange(40, 80) + 0.5
    triad = np.array([55.0, 59.0, 62.0])
    assert not _held_costs(triad, np.array([50.0]), bounds, cfg).any()
    inner = _held_costs(triad, np.array([50.0, 57.0]), bounds, cfg)
    assert inner[bounds == 60.5] == cfg.held_note_cost * 2  # G3 and B3 with the held A3
    assert inner[bounds == 70.5] == cfg.held_note_cost * 3
    single = _held_costs(np.array([57.0]), np.array([50.0]), bounds, cfg)  # A3 over D3
    assert single[bounds == 60.5] == cfg.held_note_cost and single[bounds == 53.5] == 0.0
    assert not _held_costs(np.array([64.0]), np.array([50.0]), bounds, cfg).any()  # pedalled


def test_part_writing_needs_voices_that_sound_throughout() -> None:
    """Three or four sounding notes at almost every onset is part writing; a melody between
    the strokes of an accompaniment (one or two notes) is not."""
    cfg = ScoreConfig()
    quartet = [np.arange(4)] * 6 + [np.arange(3)] * 4
    assert four_part_texture(quartet, cfg)
    accompanied = [np.arange(4), np.arange(1), np.arange(2), np.arange(4)] * 3
    assert not four_part_texture(accompanied, cfg)
    assert not four_part_texture([np.arange(6)] * 5 + [np.arange(4)] * 5, cfg)


def test_the_hands_prefer_to_part_at_the_widest_gap() -> None:
    """G3-B3-D4 under D5: parting at the octave gap is free, inside the chord it costs the
    difference of the gaps; keeping everything in one hand is not a split at all."""
    cfg = ScoreConfig()
    bounds = np.array([50.5, 57.5, 60.5, 70.5, 80.5])
    got = _gap_costs(np.array([55, 59, 62, 74]), bounds, cfg)
    assert np.allclose(got, [0.0, cfg.gap_cost * 8 / 12, cfg.gap_cost * 9 / 12, 0.0, 0.0])


def test_a_close_chord_under_the_melody_stays_in_the_left_hand() -> None:
    """G3-B3-D4 under G4 (C. Schumann op. 17/3): the left hand grips the close triad whole,
    so three notes against the melody's one cost no imbalance; a chord spread over an
    octave, or a right hand holding more notes than the left, still pays for the lopsided
    split."""
    cfg = ScoreConfig()
    close = _split_costs(np.array([55.0, 59.0, 62.0, 67.0]), cfg)
    assert close[3] == 0.0 and close[3] <= close[2]
    spread = _split_costs(np.array([48.0, 55.0, 60.0, 72.0]), cfg)  # C3-G3-C4: an octave
    assert spread[3] == cfg.balance_cost
    upper = _split_costs(np.array([43.0, 59.0, 62.0, 67.0]), cfg)
    assert upper[1] == cfg.balance_cost


def test_a_repeated_accompaniment_chord_is_not_left_to_an_idle_hand() -> None:
    """G3-B-flat3-E-flat4 under G4, then the triad alone (a Polonaise's afterbeat): the right
    hand is free, but the left hand strikes its own chord again, so keeping it whole costs
    nothing; a new chord after the same one does pay for leaving the right hand idle."""
    cfg = ScoreConfig()
    bounds = np.array([50.5, 56.5, 64.5])
    before = np.array([55.0, 58.0, 63.0, 67.0])
    for triad, idle in (([55.0, 58.0, 63.0], 0.0), ([56.0, 60.0, 63.0], 2 * cfg.idle_hand_cost)):
        pitches = np.array(triad)
        k_of_b = np.searchsorted(pitches, bounds)
        got = _idle_costs(pitches, k_of_b, np.zeros(3, int), 0, before, bounds, cfg)
        assert np.allclose(got, [0.0, 0.0, idle]), (triad, got)


def _figure_over_a_bass(figure: tuple[int, ...], bars: int = 3, eighth: float = 0.3
                        ) -> list[Note]:
    """Bars of a C2-C3 bass octave held (pedalled) for the bar, with a single-note figure of
    legato eighths starting on the second eighth."""
    notes = []
    for bar in range(bars):
        t0 = bar * 6 * eighth
        notes += [Note(t0, t0 + 6 * eighth - 0.05, 36, 60),
                  Note(t0 + 0.01, t0 + 6 * eighth - 0.05, 48, 60)]
        notes += [Note(t0 + (k + 1) * eighth, t0 + (k + 1.9) * eighth, p, 60)
                  for k, p in enumerate(figure)]
    return sorted(notes)


def test_an_arpeggio_over_a_pedalled_bass_stays_in_the_left_hand() -> None:
    """D3-G3-B3-D4-D3 over a held bass octave, right hand resting (C. Schumann op. 17/3):
    the figure crosses middle C but stays in the hand that leaves the bass, since the bass
    an octave and more below is held by the pedal, not the hand. A melody of the same
    rhythm higher up is still the right hand's."""
    cfg = ScoreConfig()
    arpeggio = _figure_over_a_bass((50, 55, 59, 62, 50))
    assert split_hands(arpeggio, cfg) == [2] * len(arpeggio)
    melody = _figure_over_a_bass((67, 72, 76, 79, 76))
    assert split_hands(melody, cfg) == [1 if n.pitch > 60 else 2 for n in melody]


def test_ritardando_is_marked_where_the_beats_slow_down() -> None:
    written = [(float(q), float(q) + 1.0, 60 + (q % 5), 1) for q in range(24)]
    slowing, _ = perform(written, Humanizer(bpm=100, seed=0, rit=0.3, rit_quarters=6))
    steady, _ = perform(written, Humanizer(bpm=100, seed=0, rit=0.0))

    def marks(played: list[tuple[float, float, int, int]]) -> list[float]:
        s, _ = analyze(played, time_signature="4/4")
        return [float(m.getOffsetInHierarchy(s.parts[0])) for m in s.parts[0].recurse()
                if isinstance(m, expressions.TextExpression) and m.content == "rit."]

    at = marks(slowing)
    assert len(at) == 1 and 17 <= at[0] <= 21, at
    assert marks(steady) == []


def test_harmonic_novelty_and_downbeat_gain_find_the_chord_changes() -> None:
    """Two beats of C major, two of G major, repeated: with a bar-long window the novelty
    peaks where the chord changes, so phase 0 of 2-beat bars is the best downbeat."""
    c_major, g_major = np.zeros(12), np.zeros(12)
    c_major[[0, 4, 7]] = 1.0
    g_major[[7, 11, 2]] = 1.0
    chroma = np.array([c_major, c_major, g_major, g_major] * 4)
    novelty = harmonic_novelty(chroma, 2)
    assert novelty[[4, 6, 8]].min() > 0.5 and novelty[[5, 7, 9]].max() < 0.2
    gains = [downbeat_gain(novelty, 1, 2, phase) for phase in (0, 1)]
    assert gains[0] > 1.0 > 0.0 > gains[1]
    assert downbeat_gain(novelty, 1, 1, 0) == 0.0  # one-beat bars: nothing to compare


def test_bar_period_compares_the_same_bar_lengths_for_every_reading() -> None:
    """A rhythm repeating every three eighths (a 3/8 tune; 16th grid, four steps a
    quarter): the 3/8 reading in eighths repeats best, a 4/4 reading of the same onsets
    pays; both compare the same lags in quarter notes, whatever beat they count."""
    cycle = np.array([2.0, 0.0, 1.0, 0.0, 1.0, 0.0])  # a quarter and an eighth, in 16ths
    pattern = np.tile(cycle, 12)
    in_three = bar_period(pattern, THREE_EIGHT_SIMPLE, 2)  # 2 steps an eighth beat
    in_four = bar_period(pattern, FOUR, 4)
    assert in_three["bar_period"] == 0.0 and in_three["bar_period_mean"] > 0.1
    assert in_four["bar_period"] < -0.2 and in_four["bar_period_mean"] < -0.1


def test_bass_period_finds_the_bar_of_a_repeating_bass() -> None:
    """A bass held for a dotted quarter, alternating C2 and G2, under a melody in eighths
    (6/8 with a new bass every beat, or 3/4 with one every bar and a half): the lowest
    sounding pitch class, followed in eighths, comes back after six eighths, not after three
    or four. The 6/8 and 3/4 readings share that bar (and the same reference lags), so the
    cue rates them alike and a 3/8 or 2/4 reading worse. Counted in quarter-note beats."""
    bass = [(1.5 * k, 1.5 * k + 1.4, 36 if k % 2 == 0 else 43) for k in range(8)]
    melody = [(0.5 * k, 0.5 * k + 0.45, 60 + k % 5) for k in range(24)]
    on, off, pitch = (np.array(v, dtype=float) for v in zip(*(bass + melody), strict=True))
    line = bass_line(on, off, pitch, 13, 2)  # eighths of quarter-note beats
    assert np.array_equal(line[:7], [36, 36, 36, 43, 43, 43, 36])  # held notes count
    assert bass_similarity(line, 6) == 1.0 and bass_similarity(line, 3) == 0.0
    assert bass_similarity(line, 99) == 0.0  # longer than the excerpt
    six_eight = bass_period(line, parse_time_signature("6/8"))
    assert six_eight == bass_period(line, parse_time_signature("3/4")) > 0.2
    assert bass_period(line, parse_time_signature("2/4")) < 0 < six_eight
    assert bass_period(line, parse_time_signature("3/8")) < 0


def test_pulse_salience_prefers_the_period_the_onsets_repeat_at() -> None:
    """Chords on every 0.8 s beat and an off-beat chord in every fourth beat: onsets repeat
    at the beat far more than at the half-beat."""
    cfg = ScoreConfig()
    times = [k * 0.8 for k in range(16)] + [k * 3.2 + 0.4 for k in range(4)]
    notes = [Note(t, t + 0.3, 60, 70) for t in sorted(times)]
    salience = PulseSalience.of(onset_envelope(onset_groups(notes, cfg), cfg), cfg)
    assert salience.at(0.8) > 0.9 and salience.at(0.4) < 0.5


def _q(start: float, end: float, release: float, pitch: int = 60) -> QNote:
    return QNote(F(start).limit_denominator(48), F(end).limit_denominator(48), pitch, 64, 1,
                 release)


def test_legato_fill_prefers_the_onset_after_an_early_release() -> None:
    cfg = ScoreConfig()
    # A detached quarter (released at 0.72) over an inner voice moving in eighths: the
    # inner voice's onset at 0.5 is nearer, but releases are early far more often than late.
    held, inner = _q(0, 0.75, 0.72, 67), _q(0.5, 1, 0.95, 60)
    beat = _q(1, 2, 1.9, 65)
    out = {n.pitch: n for n in legato_fill([held, inner, beat], cfg)}
    assert out[67].end == 1
    # A legato 16th overlapping the next onset a little still ends on it.
    notes = [_q(0, 0.5, 0.32, 72), _q(0.25, 0.5, 0.55, 74), _q(0.5, 0.75, 0.74, 76)]
    assert {n.pitch: n.end for n in legato_fill(notes, cfg)}[72] == F(1, 4)
    # Without the preference the nearer (earlier) onset wins.
    equal = ScoreConfig(legato_early_weight=1.0)
    assert {n.pitch: n.end for n in legato_fill([held, inner, beat], equal)}[67] == F(1, 2)


def test_releases_are_read_as_early() -> None:
    cfg = ScoreConfig()
    # A quarter released at 85 % (before a rest: no legato fill) is written a quarter ...
    assert _snap_release(0.0, 0.85, {}, 4, cfg) == 1.0
    assert _snap_release(0.0, 0.85, {}, 4, ScoreConfig(release_stretch=1.0)) == 0.75
    # ... and a legato 16th stays a 16th.
    assert _snap_release(0.0, 0.24, {}, 4, cfg) == 0.25


def test_sixteenth_triplets_where_a_beat_fits_them() -> None:
    beat = 0.6
    written = [(0, 1), (1, 1 / 6), (7 / 6, 1 / 6), (8 / 6, 1 / 6), (1.5, 0.5), (2, 1 / 3),
               (7 / 3, 1 / 3), (8 / 3, 1 / 3), (3, 1)]
    notes = played_bars(written, beat, slope=4)
    score, _ = analyze(notes, time_signature="4/4")
    bar = score.parts[0].getElementsByClass(stream.Measure)[1]
    got = [(F(n.offset).limit_denominator(12), F(n.duration.quarterLength).limit_denominator(12),
            bool(n.duration.tuplets)) for n in bar.recurse().notes]
    assert got == [(F(0), F(1), False), (F(1), F(1, 6), True), (F(7, 6), F(1, 6), True),
                   (F(4, 3), F(1, 6), True), (F(3, 2), F(1, 2), False), (F(2), F(1, 3), True),
                   (F(7, 3), F(1, 3), True), (F(8, 3), F(1, 3), True), (F(3), F(1), False)]


def test_sixths_are_written_in_the_largest_values_that_fit() -> None:
    sixths = {F(0): 6}
    assert split_values(F(0), F(1), F(0), FOUR, sixths) == [F(1)]
    assert split_values(F(0), F(1, 2), F(0), FOUR, sixths) == [F(1, 2)]
    assert split_values(F(1, 6), F(1), F(0), FOUR, sixths) == [F(1, 6), F(2, 3)]
    assert split_values(F(1, 2), F(5, 6), F(0), FOUR, sixths) == [F(1, 6), F(1, 6)]


def pedalled_alberti(bars: int = 4, beat: float = 0.6) -> list[tuple]:
    """Sounding durations of an Alberti bass (C3 G3 E3 G3 in eighths) under a melody of
    whole notes (C5 D5 ...), with the pedal held for each bar: every note rings to the
    barline, as the frame decoder reports them."""
    notes = []
    for bar in range(bars):
        t0, t1 = 4 * bar * beat, 4 * (bar + 1) * beat - 0.03
        notes.append((t0, t1, 72 + 2 * (bar % 2), 80))
        for k in range(8):
            notes.append((t0 + k * beat / 2, t1, (48, 55, 52, 55)[k % 4], 64))
    return notes


def test_sounding_lengths_end_at_the_next_note_of_the_voice() -> None:
    """The bass ends where the bass goes on; the melody above it is not cut by the bass."""
    from harmonynet_jax.score.sounding import written_lengths

    notes = sorted(Note(*n) for n in pedalled_alberti(bars=1))
    out = written_lengths(notes, ScoreConfig())
    for n, w in zip(notes, out, strict=True):
        if n.pitch >= 72:
            assert w.offset == n.offset  # held over the accompaniment
        elif n.onset < 2.0:
            assert abs((w.offset - n.onset) - 0.3) < 1e-9, w  # an eighth at 100 bpm
    released = [Note(0.0, 0.25, 60), Note(0.6, 0.85, 62)]  # detached: nothing to cut
    assert written_lengths(released, ScoreConfig()) == released


def test_held_basses_ring_under_chords_not_under_a_line() -> None:
    """For the meter, a bass under chords a fifth or more above rings on to the next bass
    (the register cut ended it at the first chord); a bass followed by a step keeps its cut."""
    from harmonynet_jax.score.sounding import held_basses, written_lengths

    cfg = ScoreConfig()
    bar = 1.8  # 3/4 at 100 bpm, pedalled bar by bar: everything rings to the barline
    notes = []
    for b in range(2):
        t0 = b * bar
        notes.append(Note(t0, t0 + bar, 43 - 2 * b, 70))  # the bass on the downbeat
        for k in range(1, 6):  # eighth chords a fifth and more above it
            notes += [Note(t0 + k * 0.3, t0 + bar, 50, 60), Note(t0 + k * 0.3, t0 + bar, 55, 60)]
    notes.sort()
    cut = written_lengths(notes, cfg)
    held = held_basses(notes, cut, [2] * len(notes), cfg)
    first = notes.index(Note(0.0, bar, 43, 70))
    assert cut[first].offset < 0.31  # the register cut: an eighth
    assert held[first].offset == bar  # rings on to the next bass (41)
    assert [h for h, c, n in zip(held, cut, notes, strict=True) if n.pitch > 43] == [
        c for c, n in zip(cut, notes, strict=True) if n.pitch > 43]  # chords unchanged
    line = [Note(0.0, 1.2, 43, 70), Note(0.3, 1.2, 45, 70), Note(0.6, 1.2, 47, 70)]
    cut = written_lengths(line, cfg)
    assert held_basses(line, cut, [2, 2, 2], cfg) == cut  # a moving line keeps its cut
    assert held_basses(line, cut, [1, 1, 1], cfg) == cut  # the upper staff is left alone


def test_sounding_durations_come_out_as_written() -> None:
    """A pedalled Alberti bass given as sounding durations is written in eighths, the melody
    over it in whole notes; read as played durations the bass would ring to the barline."""
    notes = pedalled_alberti()
    score, _ = analyze(notes, tempo=100.0, time_signature="4/4", durations="sounding")
    upper, lower = (part_notes(p, i + 1) for i, p in enumerate(score.parts))
    assert [n.end - n.start for n in upper] == [F(4)] * 4
    lengths = [n.end - n.start for n in lower]
    assert lengths == [F(1, 2)] * 32, lengths
    played, _ = analyze(notes, tempo=100.0, time_signature="4/4")
    assert sum(n.end - n.start == F(1, 2) for n in part_notes(played.parts[1], 2)) < 24
    with pytest.raises(ValueError, match="durations"):
        analyze(notes, durations="ringing")


def test_frame_decoder_notes_are_scored_as_sounding() -> None:
    from harmonynet_jax.transcription import Transcription

    assert Transcription([], decoder="frames").score_durations == "sounding"
    assert Transcription([], decoder="tokens").score_durations == "played"


def test_a_score_without_a_title_is_named_after_its_recording(tmp_path) -> None:
    from music21 import converter

    from harmonynet_jax.tokens import Note as TNote
    from harmonynet_jax.transcription import Transcription

    notes = [TNote(0.5 * i, 0.5 * i + 0.4, 60 + i, 80) for i in range(8)]
    t = Transcription(notes, decoder="tokens", source="/music/chopin_prelude_4.mp3")
    written, errors = t.write({"musicxml": tmp_path / "a.musicxml"})
    assert not errors and written
    assert converter.parse(written[0]).metadata.bestTitle == "chopin prelude 4"
    written, errors = t.write({"musicxml": tmp_path / "b.musicxml"}, title="Prelude")
    assert converter.parse(written[0]).metadata.bestTitle == "Prelude"


def test_register_cut_keeps_the_melody_over_an_alberti_bass() -> None:
    """K545's opening under the pedal: C5 and C4 struck together, then G4 E4 G4. The G4 is
    nearer the C5 but continues the bass's figure, so the register cut keeps C5 ringing and
    the hand split leaves the figure in the left hand; an inner note struck after the top one
    does not hold it (there the melody is the voice that leaps on)."""
    from dataclasses import replace

    from harmonynet_jax.score.hands import split_hands
    from harmonynet_jax.score.sounding import written_lengths

    end = 2.4  # one 4/4 bar at 100 bpm, pedalled to the barline
    notes = sorted([Note(0.0, end, 72, 70), Note(0.0, end, 60, 60), Note(0.3, end, 67, 60),
                    Note(0.6, end, 64, 60), Note(0.9, end, 67, 60), Note(1.2, end, 76, 70),
                    Note(1.2, end, 60, 60)])
    cfg = ScoreConfig()
    cut = written_lengths(notes, cfg)
    by = {(n.onset, n.pitch): w for n, w in zip(notes, cut, strict=True)}
    assert by[(0.0, 72)].offset == 1.2  # the melody note lasts to the next melody note
    assert by[(0.0, 60)].offset == 0.3  # the bass is the voice the G4 continues
    staves = split_hands(cut, cfg)
    assert [s for n, s in zip(notes, staves, strict=True) if n.pitch < 72] == [2] * 5
    old = written_lengths(notes, replace(cfg, sounding_top_cost=0.0))
    assert old[notes.index(Note(0.0, end, 72, 70))].offset == 0.3  # nearest-only: cut
    later = sorted([Note(0.0, end, 79, 70), Note(0.4, end, 68, 60), Note(0.8, end, 74, 70)])
    assert written_lengths(later, cfg)[0].offset == 0.8  # G5 leaps to D5 over the A♭4
