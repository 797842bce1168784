"""harmonynet_jax.score public API: round trip, XSD, overrides, empty input, hands."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
from music21 import converter, note, stream

from harmonynet_jax import score
from harmonynet_jax.score.fidelity import part_notes

BPM = 100.0
BEAT = 60.0 / BPM

# (start in quarters, length in quarters, pitch): one bar of 4/4 per line.
MELODY = [
    (0, 1, 72), (1, 0.5, 74), (1.5, 0.5, 76), (2, 1.5, 77), (3.5, 0.5, 76),
    (4, 0.25, 74), (4.25, 0.25, 72), (4.5, 0.5, 71), (5, 1, 72), (6, 2, 67),
    (8, 1, 69), (9, 1, 71), (10, 1, 72), (11, 1, 74), (12, 4, 72),
]
BASS = [(0, 2, 48), (2, 2, 53), (4, 2, 55), (6, 2, 48), (8, 4, 53), (12, 4, 48)]


def perform(written: list[tuple[float, float, int]], jitter: float = 0.012,
            articulation: float = 0.9) -> list[tuple[float, float, int, int]]:
    """Deterministic small timing noise: alternating early/late onsets."""
    out = []
    for i, (q, length, pitch) in enumerate(written):
        shift = jitter * (1 if i % 2 else -1) * (0.5 + (i % 3) / 2)
        onset = max(0.0, q * BEAT + shift)
        out.append((onset, onset + length * BEAT * articulation, pitch, 70))
    return out


def written_notes(path: Path) -> list[tuple[Fraction, Fraction, int, int]]:
    parsed = converter.parse(str(path))
    out = []
    for staff, part in enumerate(parsed.parts, start=1):
        out += [(n.start, n.end - n.start, n.pitch, staff) for n in part_notes(part, staff)]
    return sorted(out)


def test_round_trip_pitches_and_validation(tmp_path: Path) -> None:
    notes = perform(MELODY + BASS)
    info = score.write(notes, tmp_path / "a.musicxml", title="Round trip", composer="Test")
    assert score.validation_errors(tmp_path / "a.musicxml") == []
    parsed = written_notes(tmp_path / "a.musicxml")
    assert Counter(p for _, _, p, _ in parsed) == Counter(p for _, _, p, _ in notes)
    assert info.notes == len(notes)
    meta = converter.parse(str(tmp_path / "a.musicxml")).metadata
    assert meta.bestTitle == "Round trip" and meta.composer == "Test"
    assert info.time_signature == "4/4"


def test_header_names_no_composer_that_was_not_given(tmp_path: Path) -> None:
    """music21 would credit itself as the composer and repeat the title as a movement
    title, which LilyPond prints; the header keeps only what was given."""
    score.write(perform(MELODY + BASS), tmp_path / "h.musicxml", title="Untitled study")
    text = (tmp_path / "h.musicxml").read_text(encoding="utf-8")
    assert "<creator" not in text and "<movement-title>" not in text
    assert text.count("Untitled study") == 1
    assert score.validation_errors(tmp_path / "h.musicxml") == []
    meta = converter.parse(str(tmp_path / "h.musicxml")).metadata
    assert meta.bestTitle == "Untitled study" and not meta.composer


def test_simple_melody_quantized_exactly(tmp_path: Path) -> None:
    info = score.write(perform(MELODY + BASS), tmp_path / "m.musicxml")
    got = written_notes(tmp_path / "m.musicxml")
    want = sorted([(Fraction(q).limit_denominator(8), Fraction(d).limit_denominator(8), p, 1)
                   for q, d, p in MELODY]
                  + [(Fraction(q), Fraction(d), p, 2) for q, d, p in BASS])
    assert got == want
    assert abs(info.tempo_bpm - BPM) <= 4
    assert info.bars == 4 and info.anacrusis == 0


@dataclass
class NoteObj:
    onset: float
    offset: float
    pitch: int
    velocity: int


def test_accepts_note_objects_and_pedals(tmp_path: Path) -> None:
    objs = [NoteObj(*n) for n in perform(MELODY + BASS)]
    pedals = [(0.05, 2 * 4 * BEAT - 0.1)]
    score.write(objs, tmp_path / "o.musicxml", pedals=pedals)
    text = (tmp_path / "o.musicxml").read_text()
    assert '<pedal' in text and 'type="start"' in text and 'type="stop"' in text
    assert score.validation_errors(tmp_path / "o.musicxml") == []


def test_empty_input_gives_one_bar_of_rests(tmp_path: Path) -> None:
    info = score.write([], tmp_path / "e.musicxml")
    assert score.validation_errors(tmp_path / "e.musicxml") == []
    parsed = converter.parse(str(tmp_path / "e.musicxml"))
    assert len(parsed.parts) == 2
    for part in parsed.parts:
        measures = list(part.getElementsByClass(stream.Measure))
        assert len(measures) == 1
        assert not list(part.recurse().notes)
        assert list(part.recurse().getElementsByClass(note.Rest))
    assert info.bars == 1 and info.notes == 0


def test_tempo_and_time_signature_overrides(tmp_path: Path) -> None:
    quarters = [(float(i), 1.0, 60 + (i % 5)) for i in range(12)]
    notes = perform(quarters, jitter=0.0)
    # Played as quarters at 100 BPM; told the tempo is 50, each becomes an eighth.
    info = score.write(notes, tmp_path / "t.musicxml", tempo=50.0, time_signature="3/4")
    assert info.time_signature == "3/4" and info.tempo_bpm == 50.0
    got = written_notes(tmp_path / "t.musicxml")
    assert [d for _, d, _, _ in got] == [Fraction(1, 2)] * 12
    parsed = converter.parse(str(tmp_path / "t.musicxml"))
    ts = parsed.parts[0].recurse().getElementsByClass("TimeSignature").first()
    assert ts.ratioString == "3/4"
    mark = parsed.parts[0].recurse().getElementsByClass("MetronomeMark").first()
    assert mark.number == 50


def test_estimates_without_overrides_differ_from_forced(tmp_path: Path) -> None:
    quarters = [(float(i), 1.0, 60 + (i % 5)) for i in range(12)]
    info = score.write(perform(quarters, jitter=0.0), tmp_path / "u.musicxml")
    got = written_notes(tmp_path / "u.musicxml")
    assert [d for _, d, _, _ in got] == [Fraction(1)] * 12
    assert abs(info.tempo_bpm - BPM) <= 4


def test_hands_follow_voices_across_middle_c(tmp_path: Path) -> None:
    """Left hand: an Alberti figure on and above middle C (C4-G4); right hand: a melody that
    dips to A3 while the left hand is down at C2/G2. A fixed split at middle C gets both
    wrong."""
    lh, rh = [], []
    for bar in range(2):  # bars 1-2: LH Alberti C4-G4-E4-G4 under a high melody
        for i, p in enumerate([60, 67, 64, 67, 60, 67, 64, 67]):
            lh.append((bar * 4 + i * 0.5, 0.5, p))
        rh += [(bar * 4, 2.0, 79), (bar * 4 + 2, 2.0, 77 + 4 * bar)]
    for bar in range(2, 4):  # bars 3-4: LH low half notes, RH walks down to A3 and back
        lh += [(bar * 4, 2.0, 36), (bar * 4 + 2, 2.0, 43)]
        rh += [(bar * 4 + i, 1.0, p) for i, p in enumerate([62, 59, 57, 60])]
    notes = perform(rh + lh)
    score.write(notes, tmp_path / "h.musicxml")
    got = written_notes(tmp_path / "h.musicxml")
    staff_of = {(float(s), p): staff for s, _, p, staff in got}
    for q, _, p in lh:
        assert staff_of[(q, p)] == 2, (q, p)
    for q, _, p in rh:
        assert staff_of[(q, p)] == 1, (q, p)


def test_bad_input_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        score.write([(0.0, 1.0, 200, 64)], tmp_path / "x.musicxml")
    with pytest.raises(ValueError):
        score.write([(0.0, 1.0, 60, 64)], tmp_path / "x.musicxml", engraver="nope",
                    pdf_path=tmp_path / "x.pdf")
    # Times that are not numbers of seconds: a clear message, not a failure deep inside.
    for bad in ((float("nan"), 1.0), (0.0, float("inf")), (float("-inf"), 1.0)):
        with pytest.raises(ValueError, match="finite"):
            score.write([(*bad, 60, 64), (1.0, 1.5, 62, 64)], tmp_path / "x.musicxml")
    with pytest.raises(ValueError, match="finite"):
        score.write([(0.0, 1.0, 60, 64)], tmp_path / "x.musicxml",
                    pedals=[(0.0, float("nan"))])
    for tempo in (0.0, -60.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tempo"):
            score.write([(0.0, 1.0, 60, 64)], tmp_path / "x.musicxml", tempo=tempo)
    for sig in ("abc", "0/4", "4/0", "3/16"):
        with pytest.raises(ValueError, match="time signature"):
            score.write([(0.0, 1.0, 60, 64)], tmp_path / "x.musicxml", time_signature=sig)


def test_beams_do_not_cross_gaps_in_a_second_voice(capsys: pytest.CaptureFixture[str]) -> None:
    """A held note over eighths and 16ths with gaps (a second voice): music21 beams a voice
    by adding up its durations, so the gaps must be rests to it, or it beamed notes across
    them and warned about a "messed up beam pair"."""
    bar = [(0, 2, 84), (0, 0.5, 77), (0.5, 0.5, 76), (1, 0.25, 74), (1.5, 0.25, 72)]
    written = [(q + 2 * b, d, p) for b in range(4) for q, d, p in bar]
    s = score.build_score(perform(written, jitter=0.0), tempo=BPM, time_signature="2/4")
    voices = [v for m in s.parts[0].getElementsByClass(stream.Measure) for v in m.voices]
    assert voices
    for v in voices:
        notes = list(v.notes)
        for a, b in zip(notes[:-1], notes[1:], strict=True):
            if a.beams.getTypes() and a.beams.getTypes()[0] in ("start", "continue"):
                assert a.offset + a.quarterLength == b.offset, (a, b)  # no gap between
                assert int(a.offset) == int(b.offset), (a, b)  # one beat (quarter) only
    assert "beam" not in capsys.readouterr().err


def test_a_voice_silent_for_a_whole_bar_leaves_no_rest_in_it() -> None:
    """Joplin's bars alternate between one and two voices per staff: before this was pinned,
    14 of its bars showed a whole rest of the silent voice floating above the notes."""
    from harmonynet_jax.score.fidelity import PIECES, Performed

    piece = next(p for p in PIECES if p.name == "Joplin Maple Leaf")
    performed = Performed.of(piece, 0)
    built = score.build_score(performed.played, pedals=performed.pedals)
    multi, floating = 0, 0
    for part in built.parts:
        for m in part.getElementsByClass(stream.Measure):
            multi += bool(m.voices)
            for v in m.voices:
                rests = list(v.notesAndRests)
                if all(isinstance(e, note.Rest) for e in rests) and any(
                        not e.style.hideObjectOnPrint for e in rests):
                    floating += 1
    assert multi > 0  # the piece does need two voices somewhere
    assert floating == 0
