"""Harmonise a folk melody for piano: find the key, choose chords per span, add a left hand.

Chords are picked by how much of the melody (duration-weighted) they contain, with a mild
preference for primary triads and for V before I at the end, which is how such tunes are
usually accompanied.
"""

from __future__ import annotations

import numpy as np

from .harmony import PATTERNS, accompaniment, chord_pcs, find_key
from .score import INNER, MELODY, Score, ScoreNote

DEGREE_PRIOR = np.array([0.6, 0.15, 0.05, 0.4, 0.5, 0.2, 0.0])


def harmonise(melody: Score, rng: np.random.Generator) -> Score:
    tops: dict[float, ScoreNote] = {}
    for n in melody.notes:  # a tune may carry double stops: keep the top line
        if n.beat not in tops or n.pitch > tops[n.beat].pitch:
            tops[n.beat] = n
    line = sorted(tops.values(), key=lambda n: n.beat)
    if not line:
        return melody
    tonic, minor = find_key([n.pitch for n in line], [n.length for n in line])
    shift = 12 * round((72 - float(np.median([n.pitch for n in line]))) / 12)
    line = [ScoreNote(n.beat, n.length, n.pitch + shift, MELODY) for n in line]
    bar = melody.bar_length
    span = bar / 2 if bar >= 4 and rng.random() < 0.5 else bar
    n_spans = int(np.ceil(max(n.beat + n.length for n in line) / span))
    degrees = _choose_degrees(line, tonic, minor, span, n_spans)
    pattern = "waltz" if bar == 3 and rng.random() < 0.6 else str(rng.choice(PATTERNS))
    low = int(rng.integers(36, 50))
    lh: list[ScoreNote] = []
    for i, d in enumerate(degrees):
        lh += accompaniment(pattern, chord_pcs(tonic, minor, d), i * span, span, bar, low, rng)
    notes = list(line)
    if rng.random() < 0.25:  # melody in octaves
        notes += [ScoreNote(n.beat, n.length, n.pitch - 12, INNER) for n in line
                  if n.pitch - 12 > low + 14]
    return Score(notes=notes + lh, bar_length=bar, qpm=melody.qpm)


def _choose_degrees(line: list[ScoreNote], tonic: int, minor: bool, span: float,
                    n_spans: int) -> list[int]:
    weights = np.zeros((n_spans, 12))
    for n in line:
        t, end = n.beat, n.beat + n.length
        while t < end - 1e-9:
            i = min(int(t // span), n_spans - 1)
            step = min(end, (i + 1) * span) - t
            weights[i, n.pitch % 12] += step * (1.5 if abs(t - i * span) < 1e-9 else 1.0)
            t += max(step, 1e-6)
    fit = np.zeros((n_spans, 7))
    for d in range(7):
        pcs = chord_pcs(tonic, minor, d)
        fit[:, d] = weights[:, pcs].sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    score = fit + 0.3 * DEGREE_PRIOR
    degrees = [int(np.argmax(row)) for row in score]
    degrees[-1] = 0
    if n_spans >= 2 and fit[-2, 4] >= 0.3:
        degrees[-2] = 4
    for i in range(n_spans):  # an empty span (a rest) keeps the previous chord
        if weights[i].sum() == 0 and i:
            degrees[i] = degrees[i - 1]
    return degrees
