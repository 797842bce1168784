"""Generated piano textures that corpora under-represent: the keyboard's extremes and speed.

Scales and runs up to C8, two-hand chords down to A0, arpeggios over the whole keyboard,
repeated notes, trills, Alberti bass, dense (10+ key) chords, and very soft or very loud
sections. A texture piece chains several of these, each with its own key and dynamic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..config import SynthConfig
from .harmony import PATTERNS, accompaniment, chord_pcs, progression, scale_of, voicing
from .score import BASS, INNER, MELODY, Score, ScoreNote, concatenate

Key = tuple[int, bool]  # tonic pitch class, minor
Generator = Callable[[np.random.Generator, Key, int, float, float], list[ScoreNote]]
# (rng, key, bars, bar length in beats, subdivisions per beat for fast notes)


def scale_pitches(key: Key, low: int, high: int, chromatic: bool = False) -> list[int]:
    tonic, minor = key
    pcs = set(range(12)) if chromatic else {(tonic + s) % 12 for s in scale_of(minor)}
    return [p for p in range(low, high + 1) if p % 12 in pcs]


def _lh_chords(rng: np.random.Generator, key: Key, degrees: list[int], bar: float,
               low: int = 36) -> list[ScoreNote]:
    notes = []
    pattern = str(rng.choice(PATTERNS))
    for i, d in enumerate(degrees):
        notes += accompaniment(pattern, chord_pcs(*key, d), i * bar, bar, bar,
                               low + int(rng.integers(-6, 7)), rng)
    return notes


def scale_runs(rng: np.random.Generator, key: Key, bars: int, bar: float,
               sub: float) -> list[ScoreNote]:
    """One run per bar, often ending on the top C; the other hand chords or doubles it."""
    degrees = progression(rng, bars)
    chromatic = rng.random() < 0.2
    ladder = scale_pitches(key, 21, 108, chromatic)
    notes: list[ScoreNote] = []
    n = int(round(bar * sub))
    doubled = rng.random() < 0.35
    for b in range(bars):
        up = rng.random() < 0.6
        if rng.random() < 0.4:  # run into (or out of) the top of the keyboard
            top = len(ladder) - 1 if ladder[-1] == 108 else len(ladder) - 1
            idx = list(range(top - n + 1, top + 1))
        else:
            start = int(rng.integers(len(ladder) // 3, len(ladder) - n))
            idx = list(range(start, start + n))
        if not up:
            idx = idx[::-1]
        for k, i in enumerate(idx):
            p = ladder[i]
            notes.append(ScoreNote(b * bar + k / sub, 1.0 / sub, p, MELODY if k == 0 else INNER))
            if doubled and p - 24 >= 21:
                notes.append(ScoreNote(b * bar + k / sub, 1.0 / sub, p - 24, BASS))
    if not doubled:
        notes += _lh_chords(rng, key, degrees, bar)
    return notes


def big_chords(rng: np.random.Generator, key: Key, bars: int, bar: float,
               sub: float) -> list[ScoreNote]:
    """Two-hand chords: bass octaves reaching A0, four or five keys in the right hand."""
    degrees = progression(rng, bars * 2)
    notes: list[ScoreNote] = []
    step = bar / 2
    for i, d in enumerate(degrees):
        pcs = chord_pcs(*key, d, seventh=rng.random() < 0.3)
        low = int(rng.integers(21, 29)) if rng.random() < 0.4 else int(rng.integers(28, 41))
        bass = low + ((pcs[0] - low) % 12)
        length = step * rng.uniform(0.5, 1.0)
        notes += [ScoreNote(i * step, length, bass, BASS),
                  ScoreNote(i * step, length, bass + 12, BASS)]
        notes += [ScoreNote(i * step, length, p, INNER)
                  for p in voicing(pcs, bass + 19, int(rng.integers(1, 3)))]
        rh = voicing(pcs, int(rng.integers(60, 80)), int(rng.integers(4, 6)))
        notes += [ScoreNote(i * step, length, p, MELODY if p == rh[-1] else INNER) for p in rh]
    return notes


def arpeggio_sweeps(rng: np.random.Generator, key: Key, bars: int, bar: float,
                    sub: float) -> list[ScoreNote]:
    """Broken chords rising from the bass to the top octave and falling back, per bar."""
    degrees = progression(rng, bars)
    notes: list[ScoreNote] = []
    n = int(round(bar * sub))
    for b, d in enumerate(degrees):
        pcs = chord_pcs(*key, d)
        tones = voicing(pcs, int(rng.integers(21, 40)), 40)
        tones = [p for p in tones if p <= int(rng.integers(96, 109))]
        stride = max(1, len(tones) // n)
        path = tones[::stride][:n]
        if b % 2:
            path = path[::-1]
        for k, p in enumerate(path):
            notes.append(ScoreNote(b * bar + k * bar / len(path), 2.0 / sub, p,
                                   BASS if p < 48 else INNER))
    return notes


def repeated_notes(rng: np.random.Generator, key: Key, bars: int, bar: float,
                   sub: float) -> list[ScoreNote]:
    """A key (or octave) re-struck fast, the pitch changing with the harmony."""
    degrees = progression(rng, bars)
    notes: list[ScoreNote] = []
    rate = sub if sub <= 4 else sub / 2  # repetition faster than ~14 Hz is not playable
    octave = rng.random() < 0.3
    for b, d in enumerate(degrees):
        pcs = chord_pcs(*key, d)
        p = voicing(pcs, int(rng.integers(60, 84)), 1)[0]
        for k in range(int(round(bar * rate))):
            t = b * bar + k / rate
            notes.append(ScoreNote(t, 0.8 / rate, p, MELODY))
            if octave and p - 12 >= 21:
                notes.append(ScoreNote(t, 0.8 / rate, p - 12, INNER))
    return notes + _lh_chords(rng, key, degrees, bar)


def trills(rng: np.random.Generator, key: Key, bars: int, bar: float,
           sub: float) -> list[ScoreNote]:
    """Trills on a melody note with a turn into the next one, over sustained harmony."""
    degrees = progression(rng, bars)
    ladder = scale_pitches(key, 48, 100)
    notes: list[ScoreNote] = []
    rate = sub  # the texture's fast subdivision: ~6-15 strokes per second
    for b, d in enumerate(degrees):
        pcs = chord_pcs(*key, d)
        main = voicing(pcs, int(rng.integers(62, 86)), 1)[0]
        i = min(ladder.index(main) if main in ladder else 0, len(ladder) - 2)
        upper = ladder[i + 1]
        strokes = int(bar * rate)
        for k in range(strokes - 2):
            p = main if k % 2 == 0 else upper
            notes.append(ScoreNote(b * bar + k / rate, 1.0 / rate, p, MELODY))
        turn = ladder[max(0, i - 1)]
        notes += [ScoreNote(b * bar + (strokes - 2) / rate, 1.0 / rate, turn, MELODY),
                  ScoreNote(b * bar + (strokes - 1) / rate, 1.0 / rate, main, MELODY)]
        root = 36 + ((pcs[0] - 36) % 12)
        notes += [ScoreNote(b * bar, bar, p, BASS if p == root else INNER)
                  for p in (root, *voicing(pcs, root + 7, 2))]
    return notes


def melody(rng: np.random.Generator, key: Key, degrees: list[int], bar: float,
           low: int, high: int) -> list[ScoreNote]:
    """A singable line: chord tones on strong beats, steps between, varied rhythm."""
    ladder = scale_pitches(key, low, high)
    pos = len(ladder) // 2
    notes: list[ScoreNote] = []
    rhythms = ([1.0], [0.5, 0.5], [1.5, 0.5], [0.75, 0.25], [2.0], [0.5, 0.25, 0.25])
    for b, d in enumerate(degrees):
        pcs = chord_pcs(*key, d)
        t = 0.0
        while t < bar - 1e-6:
            rhythm = rhythms[int(rng.integers(len(rhythms)))]
            for k, dur in enumerate(rhythm):
                if t >= bar - 1e-6:
                    break
                dur = min(dur, bar - t)
                if k == 0:  # land on the nearest chord tone
                    cands = [j for j, p in enumerate(ladder) if p % 12 in pcs]
                    pos = min(cands, key=lambda j: abs(j - pos) + rng.random())
                else:
                    pos = int(np.clip(pos + rng.choice([-1, 1]), 0, len(ladder) - 1))
                notes.append(ScoreNote(b * bar + t, dur, ladder[pos], MELODY))
                t += dur
    return notes


def alberti(rng: np.random.Generator, key: Key, bars: int, bar: float,
            sub: float) -> list[ScoreNote]:
    """Classical melody over an Alberti bass."""
    degrees = progression(rng, bars)
    low = int(rng.integers(40, 52))
    lh: list[ScoreNote] = []
    for i, d in enumerate(degrees):
        lh += accompaniment("alberti", chord_pcs(*key, d), i * bar, bar, bar, low, rng)
    return lh + melody(rng, key, degrees, bar, 64, 88)


def dense_chords(rng: np.random.Generator, key: Key, bars: int, bar: float,
                 sub: float) -> list[ScoreNote]:
    """Ten or more keys at once: full chords in both hands, with a moving top voice."""
    degrees = progression(rng, bars * 2)
    notes: list[ScoreNote] = []
    step = bar / 2
    for i, d in enumerate(degrees):
        pcs = chord_pcs(*key, d, seventh=True)
        lh = voicing(pcs, int(rng.integers(28, 40)), 5)
        rh = voicing(pcs, max(lh[-1] + 1, int(rng.integers(55, 64))), int(rng.integers(5, 7)))
        for p in lh:
            notes.append(ScoreNote(i * step, step, p, BASS if p == lh[0] else INNER))
        for p in rh[:-1]:
            notes.append(ScoreNote(i * step, step, p, INNER))
        top = rh[-1]
        notes += [ScoreNote(i * step, step / 2, top, MELODY),
                  ScoreNote(i * step + step / 2, step / 2, top + int(rng.choice([-2, 2, 3])),
                            MELODY)]
    return notes


def song(rng: np.random.Generator, key: Key, bars: int, bar: float,
         sub: float) -> list[ScoreNote]:
    """Melody with a left-hand pattern (waltz, stride, broken chords...), to connect sections."""
    degrees = progression(rng, bars)
    return _lh_chords(rng, key, degrees, bar) + melody(rng, key, degrees, bar, 60, 84)


GENERATORS: dict[str, Generator] = {
    "scale_runs": scale_runs, "big_chords": big_chords, "arpeggio_sweeps": arpeggio_sweeps,
    "repeated_notes": repeated_notes, "trills": trills, "alberti": alberti,
    "dense_chords": dense_chords, "song": song,
}


def texture_piece(rng: np.random.Generator, target_seconds: float,
                  cfg: SynthConfig) -> tuple[Score, list[str]]:
    """Sections of 2-4 bars, each a random texture, key and dynamic, filling target_seconds."""
    qpm = float(rng.uniform(56, 132))
    bar = float(rng.choice([3.0, 4.0, 4.0]))
    # Fast-note subdivision: keep runs between ~6 and ~15 notes per second.
    subs = [s for s in (2, 3, 4, 6, 8) if 6.0 <= qpm / 60 * s <= 15.0] or [4]
    sub = float(rng.choice(subs))
    need = target_seconds * qpm / 60.0
    parts: list[Score] = []
    names: list[str] = []
    total = 0.0
    while total < need:
        name = str(rng.choice(list(GENERATORS)))
        bars = int(rng.integers(2, 5))
        key = (int(rng.integers(12)), bool(rng.random() < 0.4))
        notes = GENERATORS[name](rng, key, bars, bar, sub)
        level = _section_level(rng, name, cfg)
        parts.append(Score(notes=notes, bar_length=bar, qpm=qpm, dynamics=[(0.0, level)]))
        names.append(name)
        total += bars * bar
    return concatenate(parts, qpm), names


def _section_level(rng: np.random.Generator, name: str, cfg: SynthConfig) -> int:
    """Base velocity: often a normal level, sometimes very soft or very loud."""
    r = rng.random()
    if r < 0.15 or (name == "big_chords" and r < 0.5):
        return int(rng.integers(105, 124))  # very loud
    if r < 0.3:
        return int(rng.integers(10, 28))  # very soft
    return int(rng.choice(cfg.dynamic_levels[1:-1]))
