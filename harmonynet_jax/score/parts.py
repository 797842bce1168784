"""Part writing (chorales, string quartets) on a grand staff: soprano and alto on the upper
staff, tenor and bass on the lower, however far the tenor is from the bass.

When the texture is part writing (`four_part_texture`), notes go by voice: four voices are
followed from sonority to sonority, a sonority of fewer notes is matched to the voices it
continues (the voice that rests is the one the others are furthest from), and the two lowest
voices are the lower staff (`split_four_part`); in a sonority of more than four notes the two
highest are the upper staff. Ranking the sounding notes alone would put the
tenor on the upper staff whenever the bass rests.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.events import Note

FOUR_PARTS = 4
LOWER_VOICES = 2  # bass and tenor
UPPER_VOICES = FOUR_PARTS - LOWER_VOICES  # alto and soprano
DEFAULT_VOICES = (48.0, 55.0, 64.0, 71.0)  # before the first full sonority


def four_part_texture(chords: list[np.ndarray], cfg: ScoreConfig) -> bool:
    """Part writing: the voices sound throughout, so almost every onset sounds three or four
    notes (a rest in one voice leaves three) and few sound more. A melody over an
    accompaniment thins to one or two notes between the accompaniment's strokes."""
    if not chords:
        return False
    counts = np.array([len(c) for c in chords])
    return bool(np.mean(counts < FOUR_PARTS - 1) <= cfg.four_part_thin
                and np.mean(counts > FOUR_PARTS) <= cfg.four_part_excess)


def match_voices(chord: np.ndarray, voices: np.ndarray) -> tuple[int, ...]:
    """Voice index (0 = bass) of each note of a sorted chord of at most four notes: the
    order-keeping choice of voices that moves them least."""
    best = min(combinations(range(FOUR_PARTS), len(chord)),
               key=lambda slots: float(np.abs(chord - voices[list(slots)]).sum()))
    return best


def split_four_part(notes: Sequence[Note], groups: list[list[int]],
                    chords: list[np.ndarray]) -> list[int]:
    """Staff per note by voice: bass and tenor on the lower staff (2), the others above (1).
    In sonorities of more than four notes the two highest are the soprano and the alto: the
    extra notes are doublings or double stops of the lower parts (a quartet's cello and
    viola), so they go below."""
    full = [c for c in chords if len(c) == FOUR_PARTS]
    voices = np.array(full[0] if full else DEFAULT_VOICES, dtype=float)
    staves = [1] * len(notes)
    for g, chord in zip(groups, chords, strict=True):
        if len(chord) > FOUR_PARTS:
            boundary = 0.5 * (chord[-UPPER_VOICES] + chord[-UPPER_VOICES - 1])
            lower = {notes[i].pitch for i in g if notes[i].pitch < boundary}
        else:
            slots = match_voices(chord.astype(float), voices)
            voices[list(slots)] = chord
            lower = {int(p) for p, s in zip(chord, slots, strict=True) if s < LOWER_VOICES}
        for i in g:
            staves[i] = 2 if notes[i].pitch in lower else 1
    return staves
