"""Tempo map and beats from performed notes.

A performance has no grid: the pulse drifts, slows at cadences, and single notes are early or
late. We build an onset-strength envelope, find the dominant pulse by autocorrelation, and
track beats with dynamic programming over (beat time, beat period), so the period may follow
drift and ritardandi while staying smooth. Which metrical level becomes "the beat" is decided
later (`harmonynet_jax.score.meter`), from beats merged or split from this tracked pulse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.events import Note


@dataclass(frozen=True)
class OnsetGroups:
    """Onsets played together (chords), with their perceptual weight."""

    times: np.ndarray
    weights: np.ndarray
    lowest: np.ndarray  # lowest pitch of each group (bass notes mark beats)


def onset_groups(notes: Sequence[Note], cfg: ScoreConfig) -> OnsetGroups:
    """Cluster near-simultaneous onsets; long and many-note groups weigh more."""
    times: list[float] = []
    weights: list[float] = []
    lowest: list[int] = []
    members: list[float] = []
    start = -np.inf
    for n in sorted(notes, key=lambda n: n.onset):
        salience = 0.5 + min(n.offset - n.onset, cfg.salience_cap_s)
        if n.onset - start > cfg.chord_spread_s:
            if members:
                times[-1] = float(np.median(members))
            start = n.onset
            members = []
            times.append(n.onset)
            weights.append(0.0)
            lowest.append(n.pitch)
        members.append(n.onset)
        weights[-1] += salience
        lowest[-1] = min(lowest[-1], n.pitch)
    if members:
        times[-1] = float(np.median(members))
    return OnsetGroups(np.asarray(times), np.sqrt(np.asarray(weights)), np.asarray(lowest))


def onset_envelope(groups: OnsetGroups, cfg: ScoreConfig) -> np.ndarray:
    """Gaussian-smoothed onset strength on a frame grid (frame 0 = time 0)."""
    n_frames = int(np.ceil((groups.times.max() + 1.0) / cfg.frame_s)) + 1
    env = np.zeros(n_frames)
    radius = int(np.ceil(3 * cfg.envelope_sigma_s / cfg.frame_s))
    offsets = np.arange(-radius, radius + 1)
    kernel_t = offsets * cfg.frame_s
    for t, w in zip(groups.times, groups.weights, strict=True):
        centre = int(round(t / cfg.frame_s))
        idx = centre + offsets
        ok = (idx >= 0) & (idx < n_frames)
        shape = np.exp(-0.5 * ((kernel_t - (t - centre * cfg.frame_s)) / cfg.envelope_sigma_s) ** 2)
        env[idx[ok]] += w * shape[ok]
    return env / max(float(groups.weights.mean()), 1e-9)


def candidate_periods(env: np.ndarray, cfg: ScoreConfig) -> list[float]:
    """The strongest pulses (seconds), best first: autocorrelation peaks weighted by a
    log-normal preference. Several are kept because the strongest pulse is not always a
    metrical level (in 6/8 the quarter-eighth rhythm makes a strong two-eighth pulse)."""
    lo = max(1, int(cfg.min_period_s / cfg.frame_s))
    hi = min(len(env) - 2, int(cfg.max_period_s / cfg.frame_s))
    if hi <= lo + 2:
        return [cfg.track_center_s]
    lags = np.arange(lo, hi + 1)
    acf = autocorrelation(env, lags)
    pref = np.exp(-0.5 * (np.log2(lags * cfg.frame_s / cfg.track_center_s)
                          / cfg.track_sigma_octaves) ** 2)
    score = np.maximum(acf, 0.0) * pref
    peaks = [k for k in range(1, len(score) - 1)
             if score[k] > 0 and score[k] >= score[k - 1] and score[k] >= score[k + 1]]
    peaks.sort(key=lambda k: -score[k])
    out: list[float] = []
    for k in peaks:
        a, b, c = score[k - 1], score[k], score[k + 1]
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
        period = float((lags[k] + shift) * cfg.frame_s)
        if all(abs(np.log(period / p)) > np.log(cfg.distinct_ratio) for p in out):
            out.append(period)
        if len(out) == cfg.tracked_pulses:
            break
    return out or [cfg.track_center_s]


def autocorrelation(env: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Mean product of the centred envelope with itself `lags` frames later."""
    x = env - env.mean()
    return np.array([np.dot(x[:-lag], x[lag:]) / (len(x) - lag) if 0 < lag < len(x) else 0.0
                     for lag in lags])


@dataclass(frozen=True)
class PulseSalience:
    """How strongly the onsets repeat at a period, against the strongest pulse in the
    searched range (`min_period_s`..`max_period_s`): the listener's beat is a salient pulse,
    so a counted beat at a period the onsets barely repeat at (an eighth in a texture of
    off-beat chords) is an unlikely beat, whatever its tempo."""

    env: np.ndarray
    peak: float  # largest autocorrelation in the searched range
    frame_s: float
    drift: float  # `ScoreConfig.pulse_drift`

    @classmethod
    def of(cls, env: np.ndarray, cfg: ScoreConfig) -> PulseSalience:
        lo = max(1, int(cfg.min_period_s / cfg.frame_s))
        hi = max(lo + 1, min(len(env) - 2, int(cfg.max_period_s / cfg.frame_s)))
        acf = autocorrelation(env, np.arange(lo, hi + 1))
        return cls(env, float(max(acf.max(initial=0.0), 1e-12)), cfg.frame_s, cfg.pulse_drift)

    def at(self, period_s: float) -> float:
        """Salience in [0, 1] of the best lag within `drift` of the period (tempo drift
        blurs the peak)."""
        lo = int(np.floor(period_s / self.drift / self.frame_s))
        hi = int(np.ceil(period_s * self.drift / self.frame_s))
        acf = autocorrelation(self.env, np.arange(max(1, lo), max(2, hi + 1)))
        return float(np.clip(acf.max() / self.peak, 0.0, 1.0))


@dataclass(frozen=True)
class OnsetAnalysis:
    """A performance's onsets as the beat tracker and the meter model both read them, made
    once per performance: the envelope's autocorrelation is the costly part."""

    groups: OnsetGroups
    envelope: np.ndarray
    salience: PulseSalience

    @classmethod
    def of(cls, notes: Sequence[Note], cfg: ScoreConfig) -> OnsetAnalysis:
        groups = onset_groups(notes, cfg)
        env = onset_envelope(groups, cfg)
        return cls(groups, env, PulseSalience.of(env, cfg))


def track_beats(env: np.ndarray, period: float, span: tuple[float, float], cfg: ScoreConfig,
                ratio: tuple[float, float] | None = None) -> np.ndarray:
    """Beat times (s) maximising onset strength on beats with a smooth, drifting period.

    `span` is (first onset, last onset). State = (frame, period in frames); a beat at frame f
    with period p follows a beat at f - p whose period p' is within `step_ratio` of p.
    """
    lo_r, hi_r = ratio or cfg.track_range
    p0 = period / cfg.frame_s
    ints = np.arange(max(2, int(np.floor(lo_r * p0))), int(np.ceil(hi_r * p0)) + 1)
    log_ints = np.log(ints)
    step = log_ints[:, None] - log_ints[None, :]  # [current, previous]
    trans = cfg.smoothness * step**2
    trans[np.abs(step) > np.log(cfg.step_ratio)] = np.inf
    pull = cfg.global_pull * (log_ints - np.log(p0)) ** 2
    first = int(round(span[0] / cfg.frame_s))
    last = int(round(span[1] / cfg.frame_s))
    n_frames = min(len(env), last + int(ints[-1]) + 1)
    score = np.full((n_frames, len(ints)), -np.inf)
    back = np.full((n_frames, len(ints)), -1, dtype=np.int64)
    start_end = min(n_frames, first + int(ints[-1]) + 1)
    score[max(0, first - int(ints[-1])):start_end] = (
        env[max(0, first - int(ints[-1])):start_end, None] - pull[None, :])
    cols = np.arange(len(ints))
    for f in range(n_frames):
        prev = f - ints
        ok = prev >= 0
        if not ok.any():
            continue
        cand = score[np.where(ok, prev, 0)] - trans  # [current j, previous j']
        cand[~ok] = -np.inf
        best_prev = np.argmax(cand, axis=1)
        best = cand[cols, best_prev] + env[f] - pull
        better = best > score[f]
        score[f, better] = best[better]
        back[f, better] = best_prev[better]
    end_lo = max(0, last - int(ints[-1]))
    end_hi = min(n_frames, last + 1)
    flat = np.argmax(score[end_lo:end_hi])
    f, j = divmod(int(flat), len(ints))
    f += end_lo
    frames = []
    while f >= 0 and j >= 0:
        frames.append(f)
        prev_j = back[f, j]
        f, j = f - int(ints[j]), int(prev_j)
    return np.asarray(frames[::-1], dtype=float) * cfg.frame_s


def refine_beats(beats: np.ndarray, groups: OnsetGroups, cfg: ScoreConfig) -> np.ndarray:
    """Move beats onto nearby onsets (the grid is frame-coarse) and smooth the result."""
    out = beats.copy()
    if len(beats) < 2:
        return out
    periods = np.gradient(beats)
    for i, b in enumerate(beats):
        window = cfg.snap_fraction * periods[i]
        near = np.abs(groups.times - b) <= window
        if near.any():
            out[i] = float(np.average(groups.times[near], weights=groups.weights[near]))
    if len(out) > 2:
        out[1:-1] = 0.5 * out[1:-1] + 0.25 * (out[:-2] + out[2:])
    return out


def on_beat_share(beats: np.ndarray, groups: OnsetGroups, tolerance: float) -> float:
    """Share of the onset weight between the first and last beat that lies within
    `tolerance` beats of a beat. A tracker that slipped by part of a beat leaves the
    strong onsets after the slip off its beats, so the share falls."""
    if len(beats) < 2:
        return 0.0
    inside = (groups.times >= beats[0]) & (groups.times <= beats[-1])
    weights = groups.weights[inside]
    if not weights.sum():
        return 0.0
    x = np.interp(groups.times[inside], beats, np.arange(len(beats), dtype=float))
    return float(weights[np.abs(x - np.round(x)) < tolerance].sum() / weights.sum())


def track_pulse(env: np.ndarray, groups: OnsetGroups, period: float, span: tuple[float, float],
                cfg: ScoreConfig, ratio: tuple[float, float] | None = None) -> np.ndarray:
    """Refined beats of the smooth tracker, or of the looser one when the smooth one
    slipped (`ScoreConfig.slip_margin`). The looser tracker follows strong rubato, but used
    everywhere it moved the meter's decisions on calm performances (docs/score.md, "Rubato"),
    so it is taken only where it puts clearly more of the onsets on its beats."""
    beats = refine_beats(track_beats(env, period, span, cfg, ratio), groups, cfg)
    loose_cfg = replace(cfg, smoothness=cfg.loose_smoothness)
    loose = refine_beats(track_beats(env, period, span, loose_cfg, ratio), groups, cfg)
    if (on_beat_share(loose, groups, cfg.on_beat_tolerance)
            > on_beat_share(beats, groups, cfg.on_beat_tolerance) + cfg.slip_margin):
        return loose
    return beats


def extend_beats(beats: np.ndarray, start: float, end: float, period: float) -> np.ndarray:
    """Add beats at the edge periods so [start, end] is covered (pickups, final releases)."""
    if len(beats) == 0:
        beats = np.array([start])
    if len(beats) == 1:
        beats = np.array([beats[0], beats[0] + period])
    head = beats[1] - beats[0]
    tail = beats[-1] - beats[-2]
    before = []
    t = beats[0]
    while t > start:
        t -= head
        before.append(t)
    after = []
    t = beats[-1]
    while t < end:
        t += tail
        after.append(t)
    return np.concatenate([before[::-1], beats, after])


@dataclass(frozen=True)
class BeatGrid:
    """Beat times in seconds; maps time to fractional beat index and back."""

    times: np.ndarray

    def to_beats(self, t: np.ndarray | float) -> np.ndarray:
        """Fractional beat index, linear between beats and extrapolated at the edges."""
        b = self.times
        idx = np.arange(len(b), dtype=float)
        t = np.asarray(t, dtype=float)
        x = np.interp(t, b, idx)
        x = np.where(t < b[0], (t - b[0]) / (b[1] - b[0]), x)
        return np.where(t > b[-1], len(b) - 1 + (t - b[-1]) / (b[-1] - b[-2]), x)

    def to_seconds(self, x: np.ndarray | float) -> np.ndarray:
        """Inverse of `to_beats`."""
        b = self.times
        idx = np.arange(len(b), dtype=float)
        x = np.asarray(x, dtype=float)
        t = np.interp(x, idx, b)
        t = np.where(x < 0, b[0] + x * (b[1] - b[0]), t)
        return np.where(x > len(b) - 1, b[-1] + (x - len(b) + 1) * (b[-1] - b[-2]), t)

    def periods(self) -> np.ndarray:
        """Local beat period at each beat (s)."""
        return np.gradient(self.times)

    def merged(self, factor: int, phase: int) -> BeatGrid:
        """Every `factor`-th beat from `phase` (a slower metrical level)."""
        b = self.times
        sel = b[phase::factor]
        if phase > 0:  # keep the start covered by extrapolating one slow beat back
            sel = np.concatenate([[b[phase] - factor * (b[1] - b[0])], sel])
        if len(sel) < 2:
            sel = np.array([sel[0], sel[0] + factor * (b[-1] - b[-2])])
        return BeatGrid(sel)

    def split(self, factor: int) -> BeatGrid:
        """Each beat divided into `factor` equal parts (a faster metrical level)."""
        x = np.arange((len(self.times) - 1) * factor + 1) / factor
        return BeatGrid(self.to_seconds(x))


def regular_grid(start: float, end: float, period: float) -> BeatGrid:
    """A strict metronome grid, for input too sparse to track."""
    n = max(2, int(np.ceil((end - start) / period)) + 1)
    return BeatGrid(start + period * np.arange(n))
