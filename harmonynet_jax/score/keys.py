"""Key estimation (music21's profile analysis) and pitch spelling that follows the key.

MIDI numbers carry no spelling; a score in E-flat major full of D-sharps is unreadable, so each
pitch class is spelled from the key's scale, with the raised sixth and seventh in minor and
the side of the circle of fifths the key lives on for other chromatic notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from music21 import key as m21key
from music21 import note as m21note
from music21 import pitch as m21pitch
from music21 import stream as m21stream

from harmonynet_jax.config import ScoreConfig

SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_NAMES = ("C", "D-", "D", "E-", "E", "F", "G-", "G", "A-", "A", "B-", "B")


def _scale_classes(k: m21key.Key) -> set[int]:
    """Pitch classes a key expects: its scale, plus the raised 6th and 7th in minor."""
    classes = {p.pitchClass for p in k.getScale(k.mode).getPitches("C4", "B4")}
    if k.mode == "minor":
        classes |= {(k.tonic.pitchClass + 9) % 12, (k.tonic.pitchClass + 11) % 12}
    return classes


def accidentals_needed(k: m21key.Key, pitch_classes: Sequence[int]) -> int:
    """Accidentals a score in key `k` shows: the signature's plus one per note whose
    spelling (`spelling_table`) differs from what the signature gives its letter."""
    table = spelling_table(k)
    altered = {p.step: p.accidental.alter for p in k.alteredPitches}
    shown = 0
    for pc in pitch_classes:
        p = m21pitch.Pitch(table[pc])
        alter = p.accidental.alter if p.accidental is not None else 0.0
        shown += alter != altered.get(p.step, 0.0)
    return abs(k.sharps) + shown


def enharmonic_choice(k: m21key.Key, pitch_classes: Sequence[int]) -> m21key.Key:
    """Between a key and its enharmonic twin (C# / D-flat major) the one whose score needs
    fewer accidentals (signature plus notes) for the pitches that actually occur."""
    twin_name = k.tonic.getEnharmonic().name
    if twin_name == k.tonic.name or len(twin_name) > 2:  # no twin (or double accidentals)
        return k
    twin = m21key.Key(twin_name, k.mode)
    if abs(twin.sharps) > 7:
        return k
    if abs(k.sharps) > 7:
        return twin
    return min((k, twin), key=lambda c: (accidentals_needed(c, pitch_classes), abs(c.sharps)))


def estimate_key(notes: Sequence[tuple[Fraction, int, Fraction]], cfg: ScoreConfig
                 ) -> m21key.Key:
    """Key from (start, pitch, duration) in quarter lengths; C major when there is nothing.

    music21's profile correlation proposes the keys within `key_margin` of its best; among
    them (profiles alone confuse a key with its relative, parallel or dominant key) we add
      - `cadence_bonus` when the tonic is the final bass note (pieces end on the tonic),
      - `opening_bonus` when the first bass note is the tonic or the dominant,
      - minus `outside_weight` x the share of sounding time on pitch classes the key does
        not expect (a C-sharp minor piece has E, not E-sharp: it is not C-sharp major),
    and finally spell the tonic (C# or D-flat) with the fewer accidentals.
    """
    if not notes:
        return m21key.Key("C")
    s = m21stream.Stream()
    weight = np.zeros(12)
    for _, pitch, dur in notes:
        length = float(max(dur, Fraction(1, 16)))
        s.append(m21note.Note(pitch, quarterLength=length))
        weight[pitch % 12] += length
    weight /= weight.sum()
    best = s.analyze("key")
    last = max(start for start, _, _ in notes)
    first = min(start for start, _, _ in notes)
    final_bass = min(p for start, p, _ in notes if start == last) % 12
    first_bass = min(p for start, p, _ in notes if start == first) % 12
    candidates = [c for c in [best, *best.alternateInterpretations]
                  if c.correlationCoefficient >= best.correlationCoefficient - cfg.key_margin]

    def score(c: m21key.Key) -> float:
        tonic = c.tonic.pitchClass
        outside = sum(weight[pc] for pc in range(12) if pc not in _scale_classes(c))
        return (c.correlationCoefficient
                + (cfg.cadence_bonus if tonic == final_bass else 0.0)
                + (cfg.opening_bonus if first_bass in (tonic, (tonic + 7) % 12) else 0.0)
                - cfg.outside_weight * outside)

    k = max(candidates, key=score)
    return enharmonic_choice(m21key.Key(k.tonic.name, k.mode),
                             sorted({p % 12 for _, p, _ in notes}))


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
