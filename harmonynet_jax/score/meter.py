"""Beat level, meter and pickup, chosen jointly from the tracked pulse.

The tracked pulse may be the quarter, the eighth or the half note (the half/double tempo
problem), a pulse of three can be the eighths of 6/8 or the beats of 3/4, 2/4 and 4/4 share
every beat, and a downbeat may sit on any beat (pickups). We therefore enumerate readings
(metrical level x simple/compound subdivision x meter x downbeat phase), describe each by the
cues in `FEATURES` and let a fitted scorer (`meter_scorer`) pick one. The cues:
  - tempo: a log-normal preference for the counted beat's period; pulse: how strongly the
    onsets repeat at that period (autocorrelation, against the strongest pulse),
  - fit: how well onsets fit that beat's grid (16ths; triplets and odd 16ths cost a little),
  - contrast: onsets on beats are more accented than onsets between them; syncopation: few
    off-beat onsets sound on over the next beat (no onset on it), and few notes struck off
    the beat are held over the next one (held syncopation),
  - downbeat cues, each as "mean at downbeats minus mean at the other beats" in std units:
    long notes, long inter-onset times, low bass notes, new bass notes, many notes, loud
    notes, and harmonic change (novelty of the pitch-class profile between the bar before
    and the bar after a beat),
  - bar-length cues: onset patterns and pitch-class profiles repeating one bar later (also
    against the same bar lengths in quarter notes for every reading), the bass (lowest
    sounding pitch class, in eighths) coming back one bar later against those same bar
    lengths, beat 1 stronger than beat 3 (4/4), strong and weak bars alternating (2/4, 6/8,
    3/8 in one), for the combined accent and for each downbeat cue, onsets and seconds per
    bar,
  - notes tied over barlines, the pickup's length, how the excerpt ends,
  - an indicator per meter (for a learned prior).
The scorer is fitted by `harmonynet_jax.score.meter_training` on humanised corpus excerpts
that are not in the fidelity set. Explicit `tempo` and `time_signature` arguments remove
readings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.events import Note
from harmonynet_jax.score.meter_scorer import bundled_scorer
from harmonynet_jax.score.tempo import BeatGrid, OnsetAnalysis, OnsetGroups

ON_BEAT_TOLERANCE = 0.12  # in beats: an onset this close to a beat is on it
ACCENT_DURATION_CAP = 2.0  # beats: longer notes accent no more than a half note in 4/4
BASS_ACCENT = 1.0  # accent of a group whose bass is lower than both neighbours' (contrast)
BASS_WINDOW = 2  # beats each side: a bass note is "low" against the beats around it
OCTAVE = 12.0
PITCH_CLASSES = 12
PERIOD_LAGS = (1, 2, 3, 4)  # bar lengths (beats) whose mean self-similarity is the baseline
MAX_HARMONY_WINDOW = 4  # beats each side of a candidate downbeat for harmonic novelty

# Downbeat cues also compared between the halves of a 4-beat bar and between odd and even
# bars of 1- and 2-beat bars (`hyper_cues`): what tells 4/4 from 2/4 and 6/8 from 3/8.
HYPER_CUES = ("long", "ioi", "bass", "bass_change", "density", "harmony")

# Bias features, one per meter a reading can have (3/8e: 3/8 counted in eighths).
METER_NAMES = ("m:2/4", "m:3/4", "m:4/4", "m:6/8", "m:3/8", "m:3/8e")
# Bar lengths (quarter notes) of the meters read; `bar_period` compares their periodicities.
BAR_QUARTERS = (Fraction(3, 2), Fraction(2), Fraction(3), Fraction(4))
EIGHTHS_PER_QUARTER = 2  # the bass is followed in eighths (`bass_line`, `bass_period`)

# The cues of the meter model, in the order the scorer's inputs (`meter_model.json`) use.
FEATURES = (
    "tempo", "pulse", "fit", "contrast", "syncopation", "held_syncopation", "onset_period",
    "chroma_period", "bass_period", "long", "ioi",
    "bass", "bass_change", "density", "velocity", "harmony", "half_bar", "bar_pairs", "bar_onsets",
    "bar_onsets2", "bar_s", "bar_s2", "ties", "pickup", "pickup_any", "end_onset",
    "end_release",
    *(f"{kind}_{cue}" for kind in ("half", "pairs") for cue in HYPER_CUES),
    "bar_period", "bar_period_mean", *METER_NAMES,
)


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
    try:
        num, den = int(num_s), int(den_s)
    except ValueError:
        raise ValueError(f"time signature must look like 3/4, got {text!r}") from None
    if num < 1:
        raise ValueError(f"unsupported time signature {text!r}")
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


def syncopation(x: np.ndarray) -> float:
    """Share of onsets off the beat that sound on past the next beat (no onset on it).

    Syncopation is the exception in most music; a reading on the wrong level or in the wrong
    subdivision (a 2/4 tune of quarters read in 6/8) turns plain rhythms into syncopations.
    Inter-onset times are used, not key releases, which articulation shortens.
    """
    starts = np.unique(np.round(x / ON_BEAT_TOLERANCE) * ON_BEAT_TOLERANCE)
    if len(starts) < 2:
        return 0.0
    here, after = starts[:-1], starts[1:]
    off_beat = np.abs(here - np.round(here)) >= ON_BEAT_TOLERANCE
    crosses = after > np.floor(here + ON_BEAT_TOLERANCE) + 1 + ON_BEAT_TOLERANCE
    return float(np.mean(off_beat & crosses))


def held_syncopation(on: np.ndarray, off: np.ndarray) -> float:
    """Share of notes struck off the beat that are held past the next beat.

    Other voices may fill the beat with onsets (so inter-onset `syncopation` misses it), but
    a note's own length still respects the beat in most music: reading 4/4 quarters on every
    beat as 6/8 makes every second one start on a third eighth and ring over the beat.
    Releases are early (articulation), so a note must reach `ON_BEAT_TOLERANCE` past it.
    """
    off_beat = np.abs(on - np.round(on)) >= ON_BEAT_TOLERANCE
    crosses = off > np.floor(on + ON_BEAT_TOLERANCE) + 1 + ON_BEAT_TOLERANCE
    return float(np.mean(off_beat & crosses))


def _tempo_cost(period: float, compound: bool, cfg: ScoreConfig) -> float:
    centre = cfg.compound_center_s if compound else cfg.simple_center_s
    return 0.5 * (np.log(period / centre) / cfg.tempo_sigma) ** 2


def meter_name(meter: Meter) -> str:
    """Name of a meter's bias feature; 3/8 counted in eighths differs from 3/8 in one."""
    if meter.ratio == "3/8" and not meter.compound:
        return "m:3/8e"
    return f"m:{meter.ratio}"


@dataclass(frozen=True)
class BeatCues:
    """Per counted beat of one grid: what may mark a downbeat, and what sounds (harmony).

    A downbeat is where harmony and bass change, long notes and chords start and players
    lean in; none of these is reliable alone (a chorale changes chord on every beat, a
    melody may hold across the barline), so each becomes its own feature.
    """

    first: int  # first beat with music (beats before it carry no evidence)
    long: np.ndarray  # longest note starting on the beat (beats, capped)
    ioi: np.ndarray  # time from the beat's onset to the next onset (beats, capped)
    bass: np.ndarray  # how far (octaves, capped at one) the beat's bass lies below its region
    bass_change: np.ndarray  # 1 where the beat strikes a new lowest note (a new bass)
    density: np.ndarray  # log(1 + notes starting on the beat)
    velocity: np.ndarray  # mean velocity of those notes, in std units of the piece
    chroma: np.ndarray  # [beat, pitch class]: how long each pitch class sounds in the beat


def beat_cues(on: np.ndarray, off: np.ndarray, pitch: np.ndarray, velocity: np.ndarray
              ) -> BeatCues:
    """Per-beat cues from note onsets/offsets in beats (of one grid), pitches, velocities."""
    n_beats = int(np.ceil(off.max())) + 1
    k = np.round(on).astype(int)
    on_beat = (np.abs(on - k) < ON_BEAT_TOLERANCE) & (k >= 0) & (k < n_beats)
    long = np.zeros(n_beats)
    np.maximum.at(long, k[on_beat], np.minimum(off - on, ACCENT_DURATION_CAP)[on_beat])
    starts = np.unique(np.round(on / ON_BEAT_TOLERANCE) * ON_BEAT_TOLERANCE)
    gaps = np.minimum(np.diff(np.append(starts, np.inf)), ACCENT_DURATION_CAP)
    ks = np.round(starts).astype(int)
    beat_start = (np.abs(starts - ks) < ON_BEAT_TOLERANCE) & (ks >= 0) & (ks < n_beats)
    ioi = np.zeros(n_beats)
    np.maximum.at(ioi, ks[beat_start], gaps[beat_start])
    count = np.zeros(n_beats)
    np.add.at(count, k[on_beat], 1.0)
    lowest = np.full(n_beats, np.nan)
    np.fmin.at(lowest, k[on_beat], pitch[on_beat].astype(float))
    bass = np.zeros(n_beats)
    bass_change = np.zeros(n_beats)
    previous = np.nan
    for b in np.flatnonzero(~np.isnan(lowest)):
        ref = np.nanmedian(lowest[max(0, b - BASS_WINDOW): b + BASS_WINDOW + 1])
        bass[b] = np.clip((ref - lowest[b]) / OCTAVE, 0.0, 1.0)
        held_below = np.any((on < b - ON_BEAT_TOLERANCE) & (off > b + ON_BEAT_TOLERANCE)
                            & (pitch < lowest[b]))
        bass_change[b] = float(not held_below and lowest[b] != previous)
        previous = lowest[b]
    vz = (velocity - velocity.mean()) / (float(velocity.std()) or 1.0)
    loud = np.zeros(n_beats)
    np.add.at(loud, k[on_beat], vz[on_beat])
    chroma = np.zeros((n_beats, PITCH_CLASSES))
    for a, e, p in zip(on, off, pitch, strict=True):
        for b in range(max(0, int(np.floor(a))), min(n_beats, int(np.ceil(e)))):
            chroma[b, int(p) % PITCH_CLASSES] += min(e, b + 1.0) - max(a, float(b))
    first = max(0, int(np.floor(float(on.min()) + ON_BEAT_TOLERANCE)))
    return BeatCues(first, long, ioi, bass, bass_change, np.log1p(count),
                    loud / np.maximum(count, 1.0), chroma)


def harmonic_novelty(chroma: np.ndarray, window: int) -> np.ndarray:
    """Per beat: 1 - cosine between the pitch classes of the `window` beats before and after.

    Harmony tends to change at barlines, so with a bar-long window the novelty peaks on
    downbeats (Foote's novelty on a checkerboard kernel, reduced to its two halves).
    """
    total = np.vstack([np.zeros(PITCH_CLASSES), np.cumsum(chroma, axis=0)])
    b = np.arange(len(chroma))
    left = total[b] - total[np.maximum(b - window, 0)]
    right = total[np.minimum(b + window, len(chroma))] - total[b]
    den = np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1)
    num = (left * right).sum(axis=1)
    return np.where(den > 0, 1.0 - num / np.where(den > 0, den, 1.0), 0.0)


def downbeat_gain(values: np.ndarray, first: int, n: int, phase: int) -> float:
    """Mean of a cue on the downbeats minus its mean on the other beats, in std units."""
    if n == 1 or len(values) <= first + 1:
        return 0.0
    x = values[first:]
    down = (np.arange(first, len(values)) - phase) % n == 0
    if down.all() or not down.any():
        return 0.0
    spread = float(x.std()) or 1.0
    return (float(x[down].mean()) - float(x[~down].mean())) / spread


def _z(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / (float(values.std()) or 1.0)


def hyper_features(accent: np.ndarray, first: int, n: int, phase: int) -> dict[str, float]:
    """Cues for the bar length, from one combined accent per beat (std units):
      - half_bar (4-beat bars): how much stronger beat 1 is than beat 3; a 4/4 reading of
        2/4 music has two equal halves,
      - bar_pairs (2-beat bars): how much the downbeats of odd and even bars differ; a 2/4
        reading of 4/4 music alternates strong and weak bars.
    """
    x = accent[first:]
    pos = (np.arange(first, len(accent)) - phase) % n
    out = {"half_bar": 0.0, "bar_pairs": 0.0}
    if n == 4 and (pos == 0).any() and (pos == 2).any():
        out["half_bar"] = -float(x[pos == 0].mean() - x[pos == 2].mean())
    if n == 2:
        downs = x[pos == 0]
        if len(downs) >= 2 * 2:
            out["bar_pairs"] = abs(float(downs[0::2].mean() - downs[1::2].mean()))
    return out


def hyper_cues(values: dict[str, np.ndarray], first: int, n: int, phase: int
               ) -> dict[str, float]:
    """Per downbeat cue (std units per beat), what the bar length says about it:
      - half_<cue> (4-beat bars): beat 3 minus beat 1; music in two-beat bars read in
        four has equal halves, four-beat music a stronger first half,
      - pairs_<cue> (1- and 2-beat bars): how much the downbeats of odd and even bars
        differ; reading four-beat (or 6/8) music in two-beat (or 3/8) bars makes strong and
        weak bars alternate. (Positive on noise alone too, so its weight also acts as a
        bias on short bars; it still raises the cross-validated accuracy, docs/score.md.)
    """
    out = {}
    for cue, v in values.items():
        x = v[first:]
        pos = (np.arange(first, len(v)) - phase) % n
        half = pairs = 0.0
        if n == 4 and (pos == 0).any() and (pos == 2).any():
            half = float(x[pos == 2].mean() - x[pos == 0].mean())
        if n <= 2:
            downs = x[pos == 0]
            if len(downs) >= 2 * 2:
                pairs = abs(float(downs[0::2].mean() - downs[1::2].mean()))
        out[f"half_{cue}"] = half
        out[f"pairs_{cue}"] = pairs
    return out


def chroma_similarity(chroma: np.ndarray, lag: int) -> float:
    """Mean cosine between each beat's pitch classes and those `lag` beats later."""
    if lag <= 0 or lag >= len(chroma):
        return 0.0
    a, b = chroma[:-lag], chroma[lag:]
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    ok = den > 0
    return float(np.mean((a * b).sum(axis=1)[ok] / den[ok])) if ok.any() else 0.0


def bass_line(on: np.ndarray, off: np.ndarray, pitch: np.ndarray, n_beats: int,
              per_beat: int) -> np.ndarray:
    """Lowest pitch sounding (held notes too) at each of `per_beat` steps of every beat (NaN
    where nothing sounds); onsets and offsets in beats."""
    t = np.arange(n_beats * per_beat)[:, None] / per_beat + ON_BEAT_TOLERANCE / per_beat
    sounding = (on[None, :] < t) & (off[None, :] > t)
    low = np.where(sounding, pitch[None, :].astype(float), np.inf).min(axis=1)
    return np.where(np.isinf(low), np.nan, low)


def bass_similarity(line: np.ndarray, lag: int) -> float:
    """Share of steps of a `bass_line` whose pitch class comes back `lag` steps later.

    Harmony, and with it the bass, tends to repeat and change bar by bar: an Alberti or
    oom-pah bass returns to its note one bar later, a bass held through a 6/8 bar repeats
    every six eighths rather than every three. Steps where nothing sounds are skipped.
    """
    if lag <= 0 or lag >= len(line):
        return 0.0
    a, b = line[:-lag], line[lag:]
    ok = ~np.isnan(a) & ~np.isnan(b)
    if not ok.any():
        return 0.0
    return float(np.mean(a[ok] % PITCH_CLASSES == b[ok] % PITCH_CLASSES))


def bass_period(line: np.ndarray, meter: Meter) -> float:
    """How much the bass (a `bass_line` in eighths) repeats after this reading's bar, against
    its mean over the bar lengths of `BAR_QUARTERS` (the same lags for every reading, as in
    `bar_period`: 3/4 and 6/8 share a bar, so the bass says nothing between them)."""
    own = bass_similarity(line, int(meter.bar_ql * EIGHTHS_PER_QUARTER))
    others = [bass_similarity(line, int(q * EIGHTHS_PER_QUARTER)) for q in BAR_QUARTERS]
    return own - float(np.mean([own, *others]))


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


def relative(similarity: dict[int, float], n: int) -> float:
    """Self-similarity at a bar of `n` beats against its mean over `PERIOD_LAGS`: a piece
    that repeats at every lag says nothing about the bar length."""
    return similarity[n] - float(np.mean([similarity[lag] for lag in PERIOD_LAGS]))


def bar_size(x: np.ndarray, bar_s: float, n: int) -> dict[str, float]:
    """How much a bar holds: log onsets per bar and log bar seconds, with their squares (the
    weights make each a log-normal preference: bars of a few seconds and a handful of
    notes; a 4/4 reading of quick 2/4 music has crowded bars, a 2/4 reading of a hymn
    sparse ones)."""
    bars = max(1.0, (float(x.max()) - float(x.min())) / n)
    onsets = np.log(len(x) / bars)
    seconds = np.log(bar_s)
    return {"bar_onsets": onsets, "bar_onsets2": onsets**2, "bar_s": seconds,
            "bar_s2": seconds**2}


def bar_period(pattern: np.ndarray, meter: Meter, steps: int) -> dict[str, float]:
    """How much the onset pattern repeats after this reading's bar, against the bar lengths
    of `BAR_QUARTERS` (the same lags in quarter notes for every reading): minus the best of
    them (`bar_period`, 0 when this bar repeats best) and minus their mean (`bar_period_mean`).

    `onset_period` compares lags counted in the reading's own beats, whose baseline
    differs between levels (three eighths, three quarters); here a 3/8 tune read in 4/4 (a
    bar of eight eighths) pays for a rhythm that repeats every three eighths.
    """
    per_quarter = Fraction(steps) / meter.beat_ql
    others = [periodicity(pattern, int(q * per_quarter)) for q in BAR_QUARTERS
              if (q * per_quarter).denominator == 1]
    own = periodicity(pattern, int(meter.bar_ql * per_quarter))
    return {"bar_period": own - max([own, *others]),
            "bar_period_mean": own - float(np.mean([own, *others]))}


def bar_features(on: np.ndarray, off: np.ndarray, n: int, phase: int) -> dict[str, float]:
    """Notes tied over barlines (per bar), the pickup's share of a bar, and the ending: the
    last onset off a downbeat, the last release's distance to a barline (bar shares)."""
    bars = np.arange(phase, float(off.max()) + n, n)
    first_bar = np.searchsorted(bars, on + ON_BEAT_TOLERANCE)  # first barline after onset
    crossing = (first_bar < len(bars)) & (bars[np.minimum(first_bar, len(bars) - 1)]
                                          < off - ON_BEAT_TOLERANCE)
    last = float(on.max())
    ends_down = abs(last - round(last)) < ON_BEAT_TOLERANCE and round(last) % n == phase % n
    pickup = ((phase - np.ceil(float(on.min()) - ON_BEAT_TOLERANCE)) % n) / n
    release = ((float(off.max()) - phase) / n) % 1.0
    return {
        "ties": float(crossing.sum()) / max(1, len(bars)),
        "pickup": float(pickup),
        "pickup_any": float(pickup > 0),
        "end_onset": 0.0 if ends_down else 1.0,
        "end_release": min(release, 1.0 - release),
    }


@dataclass(frozen=True)
class Hypothesis:
    """One reading of the rhythm and what each cue says about it."""

    rhythm: Rhythm
    level: Fraction  # counted beat / tracked pulse
    features: dict[str, float]


def feature_matrix(found: Sequence[Hypothesis]) -> np.ndarray:
    """[reading, cue] in the order of `FEATURES` (a cue a reading lacks is 0)."""
    return np.array([[h.features.get(f, 0.0) for f in FEATURES] for h in found])


def _levels(tracked: BeatGrid, quarter_period: float | None) -> list[_Level]:
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


def hypotheses(notes: Sequence[Note], onsets: OnsetAnalysis, tracked: BeatGrid,
               cfg: ScoreConfig, time_signature: str | None = None,
               tempo_given: bool = False) -> list[Hypothesis]:
    """Every (level, meter, phase) reading allowed by the overrides, with its features."""
    forced = parse_time_signature(time_signature) if time_signature else None
    on_s = np.array([n.onset for n in notes])
    off_s = np.array([n.offset for n in notes])
    pitch = np.array([n.pitch for n in notes])
    velocity = np.array([n.velocity for n in notes], dtype=float)
    groups = onsets.groups
    accents = group_accents(groups)
    out = []
    for level in _levels(tracked, 1.0 if tempo_given else None):
        g = level.grid
        period = float(np.median(g.periods()))
        x = g.to_beats(groups.times)
        local = np.interp(x, np.arange(len(g.times)), g.periods())
        on, off = g.to_beats(on_s), g.to_beats(off_s)
        cues = beat_cues(on, off, pitch, velocity)
        n_beats = len(cues.long)
        # The onset pattern and the bass line depend on the beat's length only, which the
        # meters of one level share (2/4, 3/4 and 4/4): made once per beat length.
        by_beat: dict[Fraction, tuple[np.ndarray, np.ndarray]] = {}
        base = {
            "contrast": -beat_contrast(x, accents),
            "syncopation": syncopation(x),
            "held_syncopation": held_syncopation(on, off),
            "tempo": 0.0 if tempo_given else _tempo_cost(period, level.compound, cfg),
            "pulse": onsets.salience.at(period),
        }
        for meter in _meters(level, period, forced, cfg):
            if tempo_given and not _matches_tempo(level, meter):
                continue
            steps = _steps(meter)
            n = meter.beats_per_bar
            if meter.beat_ql not in by_beat:
                by_beat[meter.beat_ql] = (
                    onset_pattern(x, accents, n_beats, steps),
                    bass_line(on, off, pitch, n_beats,
                              int(meter.beat_ql * EIGHTHS_PER_QUARTER)))
            pattern, bass = by_beat[meter.beat_ql]
            x0 = float(np.round(on.min() * steps) / steps)
            novelty = harmonic_novelty(cues.chroma, min(n, MAX_HARMONY_WINDOW))
            features = dict(
                base,
                fit=_fit_cost(x, local, level.compound, meter.beat_ql, cfg),
                onset_period=-relative(
                    {lag: periodicity(pattern, lag * steps) for lag in {n, *PERIOD_LAGS}}, n),
                chroma_period=-relative(
                    {lag: chroma_similarity(cues.chroma, lag) for lag in {n, *PERIOD_LAGS}}, n),
                bass_period=-bass_period(bass, meter),
            )
            features.update(bar_size(x, period * n, n))
            features.update(bar_period(pattern, meter, steps))
            if forced is None:
                features[meter_name(meter)] = 1.0
            accent = _z(cues.ioi) + _z(cues.bass) + _z(novelty)
            hyper = {"long": _z(cues.long), "ioi": _z(cues.ioi), "bass": _z(cues.bass),
                     "bass_change": _z(cues.bass_change), "density": _z(cues.density),
                     "harmony": _z(novelty)}
            for phase in range(n):
                gains = {name: -downbeat_gain(values, cues.first, n, phase) for name, values in
                         (("long", cues.long), ("ioi", cues.ioi), ("bass", cues.bass),
                          ("bass_change", cues.bass_change),
                          ("density", cues.density), ("velocity", cues.velocity),
                          ("harmony", novelty))}
                out.append(Hypothesis(_with_pickup(g, meter, x0, phase), level.quarter_ratio,
                                      {**features, **gains, **bar_features(on, off, n, phase),
                                       **hyper_features(accent, cues.first, n, phase),
                                       **hyper_cues(hyper, cues.first, n, phase)}))
    return out


def choose_rhythm(notes: Sequence[Note], onsets: OnsetAnalysis, tracked: Sequence[BeatGrid],
                  cfg: ScoreConfig, time_signature: str | None = None,
                  tempo_given: bool = False) -> Rhythm:
    """The best-scored reading over all tracked pulses; see the module docstring."""
    found = [h for grid in tracked
             for h in hypotheses(notes, onsets, grid, cfg, time_signature, tempo_given)]
    scores = bundled_scorer(FEATURES).scores(feature_matrix(found))
    return found[int(np.argmax(scores))].rhythm


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
