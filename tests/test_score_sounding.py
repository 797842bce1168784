"""Sounding durations: the staff pass's chord releases, part writing on a wider cut, and
repeated dyad notes as voices of their own for the hand split."""

from __future__ import annotations

from dataclasses import replace

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.events import Note
from harmonynet_jax.score.hands import part_writing, split_hands
from harmonynet_jax.score.pipeline import read_sounding
from harmonynet_jax.score.sounding import written_lengths

BAR_END = 2.0  # every note below rings to the barline (the pedal), unless re-struck


def _ends(notes: list[Note], staves: list[int], chords: bool) -> dict[int, float]:
    out = written_lengths(notes, ScoreConfig(), staves, chords=chords)
    return {n.pitch: n.offset for n in out}


def test_accompaniment_chord_ends_when_its_figure_leaps_down_to_the_bass() -> None:
    # left hand: an afterbeat triad G3-B3-D4, then the bass C2 (op. 17/3)
    notes = [Note(0.5, BAR_END, p) for p in (55, 59, 62)] + [Note(1.0, BAR_END, 36)]
    staves = [2] * 4
    ends = _ends(notes, staves, chords=True)
    assert ends[55] == ends[59] == ends[62] == 1.0
    # before (and in part writing) only the note the bass continues was cut
    held = _ends(notes, staves, chords=False)
    assert held[55] == 1.0 and held[59] == held[62] == BAR_END


def test_small_or_upward_leap_leaves_the_chord_held() -> None:
    # a fourth below the chord (a second voice of the hand), and a leap up from it
    for new in (50, 74):
        notes = [Note(0.5, BAR_END, p) for p in (55, 59)] + [Note(1.0, BAR_END, new)]
        ends = _ends(notes, [2] * 3, chords=True)
        assert BAR_END in (ends[55], ends[59])


def test_two_new_notes_do_not_release_the_chord() -> None:
    notes = ([Note(0.5, BAR_END, p) for p in (55, 59, 62)]
             + [Note(1.0, BAR_END, 36), Note(1.0, BAR_END, 43)])
    ends = _ends(notes, [2] * 5, chords=True)
    assert BAR_END in (ends[59], ends[62])


def test_octave_doubling_ends_with_the_note_it_doubles() -> None:
    # right hand: octave E-flats, then a single G-sharp between them (the rag)
    notes = [Note(0.0, BAR_END, 63), Note(0.0, BAR_END, 75), Note(0.5, BAR_END, 68)]
    assert _ends(notes, [1] * 3, chords=True)[75] == 0.5
    assert _ends(notes, [1] * 3, chords=False)[75] == BAR_END


def test_part_writing_found_on_the_wider_cut_when_the_bass_leaps() -> None:
    # four voices, the bass leaping octaves: the register cut leaves the old bass ringing
    # (five sounding notes), the wider cut follows the leap (four)
    soprano = (72, 74, 76, 77, 79, 77, 76, 74)
    alto = (67, 65, 67, 69, 67, 65, 64, 65)
    tenor = (60, 62, 60, 60, 64, 62, 60, 59)
    bass = (48, 36) * 4
    notes = []
    for k, chord in enumerate(zip(soprano, alto, tenor, bass, strict=True)):
        for p in chord:
            later = [k2 for k2 in range(k + 1, len(bass))
                     if p in (soprano[k2], alto[k2], tenor[k2], bass[k2])]
            notes.append(Note(0.5 * k, 0.5 * later[0] if later else 4.0, p))
    notes.sort()
    cfg = ScoreConfig()
    assert not part_writing(written_lengths(notes, cfg), cfg)
    wide = replace(cfg, sounding_region=cfg.sounding_part_region)
    assert part_writing(written_lengths(notes, wide), cfg)


def _beach_prayer_bar() -> list[Note]:
    """Beach's Prayer, sounding: on each beat 63 (left hand) and 67 (right hand), off it 58
    and 70; under the pedal each note rings until struck again (or to the bar's end)."""
    on, off = (63, 67), (58, 70)
    beats = 4
    out = []
    for b in range(beats):
        for k, chord in enumerate((on, off)):
            onset = b * 0.5 + k * 0.25
            out += [Note(onset, min(onset + 0.5, beats * 0.5), p) for p in chord]
    return out


def test_repeated_dyad_notes_keep_their_voices_for_the_hand_split() -> None:
    cfg = ScoreConfig()
    notes = _beach_prayer_bar()
    # by register every note is cut by the next one near it: no hand holds anything
    cut = written_lengths(notes, cfg)
    assert all(n.offset - n.onset <= 0.25 + 1e-9 for n in cut[:-4])
    # with repetitions as voices, the on-beat notes ring on until struck again and the
    # off-beat notes end there: the written lengths
    kept = written_lengths(notes, cfg, repeats=True)
    assert [n.offset - n.onset for n in kept[:-4]] == [0.5, 0.5, 0.25, 0.25] * 3
    staves = read_sounding(notes, cfg)[2]
    assert staves == [2 if n.pitch < 65 else 1 for n in notes]
    assert len(set(split_hands(cut, cfg))) == 1  # the register cut alone: one hand
    off = read_sounding(notes, replace(cfg, sounding_repeat_gap=0))[2]
    assert off != staves


def test_single_note_figure_repetitions_are_not_voices() -> None:
    # an Alberti bass C G E G: the repeated G stays cut by register
    notes = [Note(0.25 * k, 2.0 if p != 67 else min(0.25 * k + 0.5, 2.0), p)
             for k, p in enumerate((60, 67, 64, 67) * 2)]
    assert written_lengths(notes, ScoreConfig(), repeats=True) == \
        written_lengths(notes, ScoreConfig())
