"""Key estimation (music21's profile analysis) and pitch spelling that follows the key.

MIDI numbers carry no spelling; a score in E-flat major full of D-sharps is unreadable, so each
pitch class is spelled from the key's scale, with the raised sixth and seventh in minor and
the side of the circle of fifths the key lives on for other chromatic notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from music21 import key as m21key
from music21 import note as m21note
from music21 import pitch as m21pitch
from music21 import stream as m21stream

SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_NAMES = ("C", "D-", "D", "E-", "E", "F", "G-", "G", "A-", "A", "B-", "B")


def estimate_key(notes: Sequence[tuple[Fraction, int, Fraction]],
                 cadence_bonus: float) -> m21key.Key:
    """Key from (start, pitch, duration) in quarter lengths; C major when there is nothing.

    music21's profile correlation decides, except that keys whose tonic is the final bass
    note get `cadence_bonus` added: pieces end on the tonic, and short excerpts are
    otherwise easily read in the subdominant or dominant.
    """
    if not notes:
        return m21key.Key("C")
    s = m21stream.Stream()
    for _, pitch, dur in notes:
        s.append(m21note.Note(pitch, quarterLength=float(max(dur, Fraction(1, 16)))))
    best = s.analyze("key")
    last = max(start for start, _, _ in notes)
    final_bass = min(p for start, p, _ in notes if start == last) % 12
    candidates = [best, *best.alternateInterpretations]
    k = max(candidates, key=lambda c: c.correlationCoefficient
            + (cadence_bonus if c.tonic.pitchClass == final_bass else 0.0))
    # Beyond six accidentals the enharmonic key reads better (F# major -> G-flat is a tie).
    if abs(k.sharps) > 6:
        k = m21key.Key(k.tonic.getEnharmonic().name, k.mode)
    return k


def spelling_table(k: m21key.Key) -> dict[int, str]:
    """Pitch class -> note name (music21 spelling, '-' for flat) for this key."""
    names = list(SHARP_NAMES if k.sharps >= 0 else FLAT_NAMES)
    for p in k.getScale(k.mode).getPitches("C4", "B4"):
        names[p.pitchClass] = p.name
    if k.mode == "minor":  # raised 6th and 7th of the melodic / harmonic minor
        for degree in (6, 7):
            raised = k.pitchFromDegree(degree).transpose("A1")
            names[raised.pitchClass] = raised.name
    return dict(enumerate(names))


def spell(midi: int, table: dict[int, str]) -> m21pitch.Pitch:
    """A music21 pitch with the key's spelling and the right octave (B#3 is C4)."""
    p = m21pitch.Pitch(table[midi % 12])
    p.octave = 4
    p.octave += (midi - p.midi) // 12
    return p
