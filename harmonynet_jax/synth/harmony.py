"""Keys, chords and accompaniment figures shared by the folk harmoniser and the textures."""

from __future__ import annotations

import numpy as np

from .score import BASS, INNER, ScoreNote

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 11)  # harmonic minor: a major dominant
# Krumhansl-Kessler key profiles (probe-tone ratings), index 0 = tonic.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# Diatonic progressions as a Markov chain over scale degrees (0 = I .. 6 = vii).
NEXT_DEGREE = {0: (3, 4, 5, 1, 2), 1: (4, 6), 2: (5, 3), 3: (4, 0, 1), 4: (0, 5, 0),
               5: (1, 3, 4), 6: (0,)}


def find_key(pitches: list[int], weights: list[float]) -> tuple[int, bool]:
    """(tonic pitch class, is_minor) by correlating a duration-weighted pc histogram."""
    hist = np.zeros(12)
    for p, w in zip(pitches, weights, strict=True):
        hist[p % 12] += w
    best, best_r = (0, False), -2.0
    for tonic in range(12):
        for minor, prof in ((False, KK_MAJOR), (True, KK_MINOR)):
            r = float(np.corrcoef(hist, np.roll(prof, tonic))[0, 1]) if hist.any() else 0.0
            if r > best_r:
                best, best_r = (tonic, minor), r
    return best


def scale_of(minor: bool) -> tuple[int, ...]:
    return MINOR if minor else MAJOR


def chord_pcs(tonic: int, minor: bool, degree: int, seventh: bool = False) -> list[int]:
    """Pitch classes of the diatonic triad (or seventh chord) on `degree`, root first."""
    scale = scale_of(minor)
    steps = (0, 2, 4, 6) if seventh else (0, 2, 4)
    return [(tonic + scale[(degree + s) % 7]) % 12 for s in steps]


def progression(rng: np.random.Generator, n: int, cadence: bool = True) -> list[int]:
    """n scale degrees from I, ending on V-I when `cadence` and long enough."""
    degs = [0]
    while len(degs) < n:
        degs.append(int(rng.choice(NEXT_DEGREE[degs[-1]])))
    if cadence and n >= 3:
        degs[-2:] = [4, 0]
    return degs[:n]


def nearest_with_pc(pc: int, around: int) -> int:
    """The pitch of class `pc` closest to `around`."""
    base = around - ((around - pc) % 12)
    return base if around - base <= 6 else base + 12


def voicing(pcs: list[int], low: int, count: int) -> list[int]:
    """`count` ascending chord tones starting at or above `low`, cycling through `pcs`."""
    out: list[int] = []
    p = low
    i = 0
    while len(out) < count and p <= 108:
        if p % 12 in pcs:
            out.append(p)
            i += 1
        p += 1
    return out


def accompaniment(pattern: str, pcs: list[int], start: float, length: float, bar: float,
                  low: int, rng: np.random.Generator) -> list[ScoreNote]:
    """Left-hand figure over one chord: block, alberti, waltz, broken, stride or octaves."""
    root = low + ((pcs[0] - low) % 12)
    triad = voicing(pcs, root + 1 if pattern != "block" else root, 3)
    notes: list[ScoreNote] = []
    if pattern == "block":
        notes = [ScoreNote(start, length * 0.95, p, BASS if i == 0 else INNER)
                 for i, p in enumerate([root - 12, *triad])]
    elif pattern == "alberti":
        figure = [triad[0], triad[2], triad[1], triad[2]]
        step = 0.5 if length >= 2 else 0.25
        t, i = start, 0
        while t < start + length - 1e-6:
            notes.append(ScoreNote(t, step, figure[i % 4], BASS if i % 4 == 0 else INNER))
            t += step
            i += 1
    elif pattern in ("waltz", "stride"):
        beats = int(round(length))
        for b in range(max(1, beats)):
            if b == 0 or (pattern == "stride" and b == 2):
                bass = root - 12 if pattern == "stride" and b == 0 else root
                notes.append(ScoreNote(start + b, 0.9, bass, BASS))
            else:
                notes += [ScoreNote(start + b, 0.6, p + 12, INNER) for p in triad]
    elif pattern == "broken":
        figure = [root, *triad, triad[0] + 12, *triad[::-1]]
        step = 0.5
        for i in range(int(round(length / step))):
            notes.append(ScoreNote(start + i * step, step * 1.5, figure[i % len(figure)],
                                   BASS if i == 0 else INNER))
    elif pattern == "octaves":
        step = 1.0 if rng.random() < 0.5 else 0.5
        for i in range(int(round(length / step))):
            notes += [ScoreNote(start + i * step, step * 0.9, root - 12, BASS),
                      ScoreNote(start + i * step, step * 0.9, root, BASS)]
    else:
        raise ValueError(f"unknown accompaniment pattern {pattern!r}")
    return [n for n in notes if 21 <= n.pitch <= 108]


PATTERNS = ("block", "alberti", "waltz", "broken", "stride", "octaves")
