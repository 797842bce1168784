"""Score (beats) -> Performance (seconds): rubato, timing noise, dynamics, articulation, pedal.

Everything a performer varies is drawn once per piece into a `Style`, so a dataset mixes
clean and sloppy, dry and pedalled, soft and loud playing rather than averaging them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import SynthConfig
from .pedal import STYLES, pedal_events
from .performance import Note, Performance, sanitize
from .score import BASS, MELODY, Score

GRID = 1.0 / 48.0  # beat resolution of the tempo curve
ARTICULATIONS = ("legato", "normal", "staccato")
ARTICULATION_RANGE = {"legato": (1.0, 1.12), "normal": (0.75, 0.95), "staccato": (0.25, 0.5)}
ROLE_VELOCITY = {MELODY: 12.0, BASS: 3.0}  # others -6
INNER_VELOCITY = -6.0
MIN_VELOCITY = 5  # quieter key presses are inaudible in every SoundFont here


@dataclass(frozen=True)
class Style:
    wobble: float
    ritardando: float
    jitter_s: float
    lead_s: float
    roll_probability: float
    roll_spread_s: float
    articulation: str
    pedal: str
    phrase_bars: int
    arch: float  # velocity swell within a phrase
    tempo_events: bool  # write per-phrase tempo changes into the MIDI (else 120 bpm)


def sample_style(rng: np.random.Generator, cfg: SynthConfig) -> Style:
    def uni(r: tuple[float, float]) -> float:
        return float(rng.uniform(*r))

    art_w = np.asarray(cfg.articulation_weights, float)
    ped_w = np.asarray(cfg.pedal_style_weights, float)
    return Style(
        wobble=uni(cfg.tempo_wobble), ritardando=uni(cfg.ritardando),
        jitter_s=uni(cfg.onset_jitter_ms) / 1e3, lead_s=uni(cfg.melody_lead_ms) / 1e3,
        roll_probability=cfg.roll_probability if rng.random() < 0.6 else 0.0,
        roll_spread_s=uni(cfg.roll_spread_ms) / 1e3,
        articulation=str(rng.choice(ARTICULATIONS, p=art_w / art_w.sum())),
        pedal=str(rng.choice(STYLES, p=ped_w / ped_w.sum())),
        phrase_bars=int(rng.choice([2, 4, 4, 8])), arch=float(rng.uniform(0.0, 16.0)),
        tempo_events=bool(rng.random() < 0.5),
    )


def tempo_curve(score: Score, style: Style, rng: np.random.Generator) -> np.ndarray:
    """Seconds at each GRID beat: smooth tempo drift plus ritardandi at phrase ends."""
    n = int(np.ceil(score.length / GRID)) + 2
    beats = np.arange(n) * GRID
    bars = beats / score.bar_length
    factor = np.ones(n)
    for _ in range(3):  # slow drifts over several bars
        period = rng.uniform(2.0, 12.0)
        factor += style.wobble / 2 * np.sin(2 * np.pi * bars / period + rng.uniform(0, 6.3))
    phrase = style.phrase_bars * score.bar_length
    window = min(score.bar_length, 2.0)
    to_end = (phrase - beats % phrase) / window  # < 1 inside the last `window` beats
    rit = np.where(to_end < 1.0, (1.0 - to_end) ** 2, 0.0) * style.ritardando
    final = np.clip(1.0 - (score.length - beats) / (2 * score.bar_length), 0.0, 1.0)
    factor *= 1.0 - np.maximum(rit, 1.4 * style.ritardando * final**2)
    factor = np.clip(factor, 0.4, 1.6)
    seconds_per_step = 60.0 / (score.qpm * factor) * GRID
    return np.concatenate([[0.0], np.cumsum(seconds_per_step)[:-1]])


def humanize(score: Score, rng: np.random.Generator, cfg: SynthConfig,
             style: Style | None = None) -> tuple[Performance, Style]:
    style = style or sample_style(rng, cfg)
    curve = tempo_curve(score, style, rng)
    grid = np.arange(len(curve)) * GRID

    def sec(beat: float | np.ndarray) -> np.ndarray:
        return np.interp(beat, grid, curve)

    notes = sorted(score.notes, key=lambda n: (n.beat, n.pitch))
    onsets = sec(np.array([n.beat for n in notes])) if notes else np.zeros(0)
    onsets = onsets + np.clip(rng.normal(0, style.jitter_s, len(notes)),
                              -3 * style.jitter_s, 3 * style.jitter_s)
    chords: dict[int, list[int]] = {}
    for i, n in enumerate(notes):
        chords.setdefault(round(n.beat * 96), []).append(i)
    for members in chords.values():
        if len(members) >= 3 and rng.random() < style.roll_probability:
            members = sorted(members, key=lambda i: notes[i].pitch)
            spread = style.roll_spread_s * rng.uniform(0.6, 1.0)
            base = onsets[members[0]]
            for k, i in enumerate(members):
                onsets[i] = base + spread * k / (len(members) - 1)
        else:
            for i in members:
                if notes[i].role == MELODY and len(members) > 1:
                    onsets[i] -= style.lead_s
    velocities = _velocities(score, notes, style, rng, cfg)
    lo, hi = ARTICULATION_RANGE[style.articulation]
    perf_notes = []
    for i, n in enumerate(notes):
        art = rng.uniform(lo, hi)
        if style.articulation == "staccato" and n.length > 1.0:
            art = rng.uniform(*ARTICULATION_RANGE["normal"])
        off = float(sec(n.beat + n.length * art)) + rng.normal(0, style.jitter_s)
        on = float(max(0.0, onsets[i]))
        perf_notes.append(Note(n.pitch, int(velocities[i]), on, max(off, on + 0.04)))
    start = 0.25 + style.lead_s  # silence before the first note, like a recording
    bar_starts = list(sec(np.arange(0.0, score.length, score.bar_length)) + start)
    beat_starts = list(sec(np.arange(0.0, score.length, 1.0)) + start)
    perf = Performance(notes=perf_notes).shifted(start)
    end = perf.end + 0.3
    perf.pedal = pedal_events(style.pedal, bar_starts, beat_starts, end, rng)
    perf.tempos = _tempo_map(score, style, sec, start)
    return sanitize(perf), style


def _velocities(score: Score, notes: list, style: Style, rng: np.random.Generator,
                cfg: SynthConfig) -> np.ndarray:
    """Phrase-level dynamic (or the score's own), phrase arch, voice balance, metre, noise."""
    phrase = style.phrase_bars * score.bar_length
    n_phrases = int(score.length // phrase) + 1
    levels = cfg.dynamic_levels
    idx = int(rng.integers(1, len(levels) - 1))
    phrase_level = []
    for _ in range(n_phrases):
        phrase_level.append(levels[idx])
        idx = int(np.clip(idx + rng.choice([-1, 0, 0, 1]), 0, len(levels) - 1))
    out = np.zeros(len(notes))
    dyn = sorted(score.dynamics)
    for i, n in enumerate(notes):
        base = float(phrase_level[int(n.beat // phrase)])
        for b, v in dyn:
            if b <= n.beat + 1e-9:
                base = float(v)
        pos = (n.beat % phrase) / phrase
        v = base + style.arch * (np.sin(np.pi * pos) - 0.5)
        v += ROLE_VELOCITY.get(n.role, INNER_VELOCITY) * (0.4 + 0.6 * base / 127)
        in_bar = n.beat % score.bar_length
        v += 4.0 if in_bar < 1e-6 else (1.0 if abs(in_bar - round(in_bar)) < 1e-6 else -2.0)
        out[i] = v + rng.normal(0, cfg.velocity_jitter)
    return np.clip(np.round(out), MIN_VELOCITY, 127)


def _tempo_map(score: Score, style: Style, sec, start: float) -> list[tuple[float, float]]:
    """Nominal MIDI tempo: MAESTRO's constant 120 bpm, or the mean tempo of each phrase."""
    if not style.tempo_events:
        return [(0.0, 120.0)]
    phrase = style.phrase_bars * score.bar_length
    tempos = [(0.0, float(score.qpm))]
    b = 0.0
    while b + phrase <= score.length:
        t0, t1 = float(sec(b)), float(sec(b + phrase))
        tempos.append((t0 + start, round(60.0 * phrase / (t1 - t0), 2)))
        b += phrase
    return [tempos[0]] + [t for t in tempos[1:] if t[0] > 0.0]
