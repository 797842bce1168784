"""Beat level, meter and pickup, chosen jointly from the tracked pulse.

The tracked pulse may be the quarter, the eighth or the half note (the half/double tempo
problem), and a pulse of three can be the eighths of 6/8 or the beats of 3/4. We therefore
score hypotheses (metrical level x simple/compound subdivision x meter x downbeat phase) by
  - a log-normal tempo preference for the beat,
  - how well onsets fit that beat's grid (16ths; triplets and odd 16ths cost a little),
  - accents on downbeats (long notes, bass notes, chords) and few notes tied over barlines,
and keep the cheapest. Explicit `tempo`/`time_signature` arguments remove hypotheses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.events import Note
from harmonynet_jax.score.tempo import BeatGrid, OnsetGroups

ON_BEAT_TOLERANCE = 0.12  # in beats: an onset this close to a beat is on it
ACCENT_DURATION_CAP = 2.0  # beats: longer notes accent no more than a half note in 4/4
BASS_ACCENT = 1.0  # extra accent of a bass an octave below those of the beats around it
BASS_WINDOW = 2  # beats each side
CHORD_ACCENT = 0.2  # per log note count
OCTAVE = 12.0


@dataclass(frozen=True)
class Meter:
    """A time signature plus how it is counted."""

    numerator: int
    denominator: int
    beat_ql: Fraction  # quarter lengths per counted beat
    beats_per_bar: int

    @property
    def compound(self) -> bool:
        """Beats divide into three eighths (6/8, 3/8 counted in one, ...)."""
        return self.beat_ql == Fraction(3, 2)

    @property
    def bar_ql(self) -> Fraction:
        return self.beat_ql * self.beats_per_bar

    @property
    def ratio(self) -> str:
        return f"{self.numerator}/{self.denominator}"


SIMPLE = {2: Meter(2, 4, Fraction(1), 2), 3: Meter(3, 4, Fraction(1), 3),
          4: Meter(4, 4, Fraction(1), 4)}
COMPOUND = {1: Meter(3, 8, Fraction(3, 2), 1), 2: Meter(6, 8, Fraction(3, 2), 2),
            3: Meter(9, 8, Fraction(3, 2), 3), 4: Meter(12, 8, Fraction(3, 2), 4)}
THREE_EIGHT_SIMPLE = Meter(3, 8, Fraction(1, 2), 3)


def parse_time_signature(text: str) -> Meter:
    """'3/4' -> Meter; compound numerators (6, 9, 12 over 8) count dotted quarters."""
    num_s, _, den_s = text.partition("/")
    num, den = int(num_s), int(den_s)
    if den == 8 and num % 3 == 0:
        return COMPOUND[num // 3]
    if den == 8:
        return Meter(num, 8, Fraction(1, 2), num)
    if den == 4:
        return Meter(num, 4, Fraction(1), num)
    if den == 2:
        return Meter(num, 2, Fraction(2), num)
    raise ValueError(f"unsupported time signature {text!r}")


@dataclass(frozen=True)
class Rhythm:
    """The chosen beat grid (seconds of each counted beat), meter and pickup."""

    grid: BeatGrid
    meter: Meter
    origin: float  # beat coordinate (in `grid`) where the score starts
    anacrusis: Fraction  # quarter lengths of the pickup bar (0 when the piece starts on 1)


@dataclass(frozen=True)
class _Level:
    grid: BeatGrid
    compound: bool
    quarter_ratio: Fraction  # counted beat / tracked pulse, in quarter-note terms


def _fit_cost(x: np.ndarray, periods: np.ndarray, compound: bool, beat_ql: Fraction,
              cfg: ScoreConfig) -> float:
    """Mean cost of onset positions `x` (in beats) on this beat's grid of 16ths/triplets."""
    steps = 6 if compound else _steps_for(beat_ql)
    pos = (x - np.floor(x)) * steps
    nearest = np.round(pos)
    err_s = np.abs(pos - nearest) / steps * periods
    odd = cfg.duple_in_compound_cost if compound else cfg.sixteenth_cost
    cost = 0.5 * (err_s / cfg.timing_sigma_s) ** 2 + np.where(nearest % 2 == 1, odd, 0.0)
    if not compound:
        trip = (x - np.floor(x)) * 3
        trip_s = np.abs(trip - np.round(trip)) / 3 * periods
        cost = np.minimum(cost, 0.5 * (trip_s / cfg.timing_sigma_s) ** 2 + cfg.triplet_cost)
    return float(np.mean(np.minimum(cost, cfg.fit_cap)))


def _steps_for(beat_ql: Fraction) -> int:
    """16ths per counted beat (at least two, so an eighth beat still splits)."""
    return max(2, int(beat_ql * 4))


def group_accents(groups: OnsetGroups) -> np.ndarray:
    """Accent of each onset group: its weight, plus a bonus for a local bass note."""
    low = groups.lowest.astype(float)
    prev = np.concatenate([[np.inf], low[:-1]])
    nxt = np.concatenate([low[1:], [np.inf]])
    bass = (low <= prev) & (low <= nxt) & ((low < prev) | (low < nxt))
    return groups.weights + BASS_ACCENT * bass


def beat_contrast(x: np.ndarray, accents: np.ndarray) -> float:
    """How much more accented onsets on beats are than onsets between beats (in std units).

    A wrong metrical level puts beats on weak subdivisions (or has no subdivisions at all,
    contrast 0), whatever grid the onsets happen to fit.
    """
    on = np.abs(x - np.round(x)) < ON_BEAT_TOLERANCE
    if on.all() or not on.any():
        return 0.0
    spread = float(accents.std()) or 1.0
    return (float(accents[on].mean()) - float(accents[~on].mean())) / spread


def _tempo_cost(period: float, compound: bool, cfg: ScoreConfig) -> float:
    centre = cfg.compound_center_s if compound else cfg.simple_center_s
    return 0.5 * (np.log(period / centre) / cfg.tempo_sigma) ** 2


def beat_accents(grid: BeatGrid, notes: Sequence[Note], n_beats: int) -> np.ndarray:
    """Accent of each beat: its longest new note, how low its bass is against the beats
    around it (an oom-pah bass marks the bar), and a little for chord size."""
    acc = np.zeros(n_beats)
    if not notes:
        return acc
    on = grid.to_beats(np.array([n.onset for n in notes]))
    off = grid.to_beats(np.array([n.offset for n in notes]))
    pitch = np.array([n.pitch for n in notes], dtype=float)
    k = np.round(on).astype(int)
    on_beat = (np.abs(on - k) < ON_BEAT_TOLERANCE) & (k >= 0) & (k < n_beats)
    longest = np.zeros(n_beats)
    np.maximum.at(longest, k[on_beat], np.minimum(off - on, ACCENT_DURATION_CAP)[on_beat])
    count = np.zeros(n_beats)
    np.add.at(count, k[on_beat], 1.0)
    lowest = np.full(n_beats, np.nan)
    for b in np.unique(k[on_beat]):
        lowest[b] = pitch[on_beat & (k == b)].min()
    bass = np.zeros(n_beats)
    for b in range(n_beats):
        if np.isnan(lowest[b]):
            continue
        around = lowest[max(0, b - BASS_WINDOW): b + BASS_WINDOW + 1]
        ref = np.nanmedian(around)
        bass[b] = np.clip((ref - lowest[b]) / OCTAVE, 0.0, 1.0)
    return longest + BASS_ACCENT * bass + CHORD_ACCENT * np.log1p(count)


def onset_pattern(on: np.ndarray, weights: np.ndarray, n_beats: int, steps: int
                  ) -> np.ndarray:
    """Onset weight on a grid of `steps` per beat (for bar-periodicity)."""
    pattern = np.zeros(n_beats * steps + 1)
    idx = np.clip(np.round(on * steps).astype(int), 0, len(pattern) - 1)
    np.add.at(pattern, idx, weights)
    return pattern


def periodicity(pattern: np.ndarray, lag: int) -> float:
    """Correlation of the onset pattern with itself one bar later (bars repeat rhythms)."""
    if lag <= 0 or lag >= len(pattern) - 1:
        return 0.0
    a, b = pattern[:-lag], pattern[lag:]
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _meter_terms(acc: np.ndarray, on: np.ndarray, off: np.ndarray, n: int, phase: int,
                 cfg: ScoreConfig) -> dict[str, float]:
    """Costs of one bar grouping: unaccented downbeats, notes tied over barlines, a last
    onset off the downbeat (pieces end on a strong beat) and a long pickup."""
    if n == 1:
        down_gain = 0.0
    else:  # downbeats against the other beats (not all beats: that favours large n)
        spread = float(acc.std()) or 1.0
        others = np.delete(acc, np.arange(phase, len(acc), n))
        down_gain = (float(acc[phase::n].mean()) - float(others.mean())) / spread
    bars = np.arange(phase, len(acc) + n, n)
    first_bar = np.searchsorted(bars, on + ON_BEAT_TOLERANCE)  # first barline after onset
    crossing = (first_bar < len(bars)) & (bars[np.minimum(first_bar, len(bars) - 1)]
                                          < off - ON_BEAT_TOLERANCE)
    last = float(on.max())
    ends_down = abs(last - round(last)) < ON_BEAT_TOLERANCE and round(last) % n == phase % n
    pickup = ((phase - np.ceil(float(on.min()) - ON_BEAT_TOLERANCE)) % n) / n
    return {
        "downbeat": -cfg.downbeat_weight * down_gain,
        "ties": cfg.barline_tie_cost * float(crossing.sum()) / max(1, len(bars)),
        "end": 0.0 if ends_down else cfg.end_cost,
        "pickup": cfg.pickup_cost * float(pickup),
    }


@dataclass(frozen=True)
class Hypothesis:
    """One reading of the rhythm and what each cue says about it (lower is better)."""

    rhythm: Rhythm
    level: Fraction  # counted beat / tracked pulse
    terms: dict[str, float]

    @property
    def cost(self) -> float:
        return sum(self.terms.values())


def _levels(tracked: BeatGrid, groups: OnsetGroups, quarter_period: float | None) -> list[_Level]:
    """Candidate counted-beat grids derived from the tracked pulse."""
    out: list[_Level] = []

    def add(make: Callable[[int], BeatGrid], phases: int, compound: bool,
            ratio: Fraction) -> None:
        for ph in range(phases):  # every phase: the accent cues decide between them
            out.append(_Level(make(ph), compound, ratio))

    # Simple beats: the pulse, twice it, or half of it. Compound beats (three eighths):
    # the pulse, three pulses, or three half-pulses (when the pulse was the quarter).
    add(lambda _p: tracked, 1, False, Fraction(1))
    add(lambda p: tracked.merged(2, p), 2, False, Fraction(2))
    add(lambda _p: tracked.split(2), 1, False, Fraction(1, 2))
    add(lambda _p: tracked, 1, True, Fraction(1))
    add(lambda p: tracked.merged(3, p), 3, True, Fraction(3))
    add(lambda p: tracked.split(2).merged(3, p), 3, True, Fraction(3, 2))
    if quarter_period is not None:  # the tracked pulse is a known quarter note
        keep = {(False, Fraction(1)), (False, Fraction(1, 2)), (True, Fraction(3, 2))}
        out = [lv for lv in out if (lv.compound, lv.quarter_ratio) in keep]
    return out


def hypotheses(notes: Sequence[Note], groups: OnsetGroups, tracked: BeatGrid,
               cfg: ScoreConfig, time_signature: str | None = None,
               tempo_given: bool = False) -> list[Hypothesis]:
    """Every (level, meter, phase) reading allowed by the overrides, with its costs."""
    forced = parse_time_signature(time_signature) if time_signature else None
    priors = dict(cfg.meter_prior)
    on_s = np.array([n.onset for n in notes])
    off_s = np.array([n.offset for n in notes])
    accents = group_accents(groups)
    out = []
    for level in _levels(tracked, groups, 1.0 if tempo_given else None):
        g = level.grid
        period = float(np.median(g.periods()))
        x = g.to_beats(groups.times)
        local = np.interp(x, np.arange(len(g.times)), g.periods())
        on, off = g.to_beats(on_s), g.to_beats(off_s)
        n_beats = int(np.ceil(off.max())) + 1
        acc = beat_accents(g, notes, n_beats)
        base = {
            "contrast": -cfg.contrast_weight * beat_contrast(x, accents),
            "tempo": 0.0 if tempo_given else _tempo_cost(period, level.compound, cfg),
        }
        for meter in _meters(level, period, forced, cfg):
            if tempo_given and not _matches_tempo(level, meter):
                continue
            steps = _steps(meter)
            n = meter.beats_per_bar
            x0 = float(np.round(on.min() * steps) / steps)
            pattern = onset_pattern(x, accents, n_beats, steps)
            terms = dict(base, fit=_fit_cost(x, local, level.compound, meter.beat_ql, cfg),
                         prior=priors.get(meter.ratio, 0.5) if forced is None else 0.0,
                         period=-cfg.periodicity_weight * periodicity(pattern, n * steps))
            for phase in range(n):
                out.append(Hypothesis(_with_pickup(g, meter, x0, phase), level.quarter_ratio,
                                      {**terms, **_meter_terms(acc, on, off, n, phase, cfg)}))
    return out


def choose_rhythm(notes: Sequence[Note], groups: OnsetGroups, tracked: Sequence[BeatGrid],
                  cfg: ScoreConfig, time_signature: str | None = None,
                  tempo_given: bool = False) -> Rhythm:
    """The cheapest reading over all tracked pulses; see the module docstring."""
    found = [h for grid in tracked
             for h in hypotheses(notes, groups, grid, cfg, time_signature, tempo_given)]
    return min(found, key=lambda h: h.cost).rhythm


def _steps(meter: Meter) -> int:
    """Grid steps per counted beat used to place the first note (16ths)."""
    return _steps_for(meter.beat_ql)


def _meters(level: _Level, period: float, forced: Meter | None,
            cfg: ScoreConfig) -> list[Meter]:
    if forced is not None:
        ok = forced.compound == level.compound
        return [forced] if ok else []
    if level.compound:
        return [COMPOUND[1], COMPOUND[2]]
    if period < cfg.three_eight_max_beat_s:
        return [THREE_EIGHT_SIMPLE]
    return [SIMPLE[2], SIMPLE[3], SIMPLE[4]]


def _matches_tempo(level: _Level, meter: Meter) -> bool:
    """With a given tempo the tracked pulse is the quarter: the level must agree."""
    return level.quarter_ratio == meter.beat_ql


def _with_pickup(grid: BeatGrid, meter: Meter, x0: float, phase: int) -> Rhythm:
    """The score starts at the first note; a pickup bar holds what precedes a downbeat."""
    n = meter.beats_per_bar
    first_down = phase + n * np.ceil((x0 - phase - 1e-6) / n)
    pickup_beats = Fraction(float(first_down - x0)).limit_denominator(12)
    return Rhythm(grid, meter, x0, pickup_beats * meter.beat_ql)
