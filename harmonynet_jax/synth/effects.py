"""Recording-chain effects after synthesis: room, microphone/EQ colour, noise, codecs, level.

All effects are causal or zero-delay at the direct sound, so note onsets stay where the MIDI
says they are. Parameters are drawn once per item into an `EffectsPlan` (stored with the
item for reproducibility) and applied by `apply_effects`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import fft as sfft
from scipy import signal

from ..config import SynthConfig
from .codec import lossy_round_trip

NOISE_KINDS = ("white", "pink", "brown", "hum", "room")
IR_LENGTH_RT60 = 0.85  # impulse responses end ~50 dB down: the rest is below the noise floor
IR_MAX_SECONDS = 3.0


@dataclass(frozen=True)
class EffectsPlan:
    rt60: float | None = None  # convolution reverb: decay time (s); None = dry
    wet: float = 0.0
    predelay: float = 0.0  # seconds between direct sound and the reverb onset
    brightness: float = 0.6  # high-band decay relative to low band (<1 = darker hall)
    eq: tuple[tuple[str, float, float, float], ...] = ()  # (kind, Hz, dB, Q) biquads
    noise: str | None = None
    snr_db: float = 60.0
    codec: str | None = None  # "mp3" | "aac" round trip
    codec_kbps: int = 128
    peak_dbfs: float = -1.0
    seed: int = 0  # for the noise and impulse-response draws

    def as_dict(self) -> dict:
        return asdict(self)


def sample_effects(rng: np.random.Generator, cfg: SynthConfig) -> EffectsPlan:
    kw: dict = {"seed": int(rng.integers(2**31)),
                "peak_dbfs": float(rng.uniform(*cfg.peak_dbfs))}
    if rng.random() < cfg.reverb_probability:
        kw.update(rt60=float(np.exp(rng.uniform(*np.log(cfg.reverb_rt60)))),
                  wet=float(rng.uniform(*cfg.reverb_wet)),
                  predelay=float(rng.uniform(0.0, 0.03)),
                  brightness=float(rng.uniform(0.3, 0.9)))
    if rng.random() < cfg.eq_probability:
        bands = [("highpass", float(rng.uniform(20, 90)), 0.0, 0.707)]
        for _ in range(int(rng.integers(1, 4))):
            kind = str(rng.choice(["peak", "lowshelf", "highshelf"]))
            hz = {"peak": (150, 6000), "lowshelf": (80, 400), "highshelf": (2500, 9000)}[kind]
            bands.append((kind, float(np.exp(rng.uniform(*np.log(hz)))),
                          float(rng.uniform(-cfg.eq_gain_db, cfg.eq_gain_db)),
                          float(rng.uniform(0.5, 2.0))))
        if rng.random() < 0.2:  # dull microphone or old recording
            bands.append(("lowpass", float(rng.uniform(4000, 11000)), 0.0, 0.707))
        kw["eq"] = tuple(bands)
    if rng.random() < cfg.noise_probability:
        kw.update(noise=str(rng.choice(NOISE_KINDS)),
                  snr_db=float(rng.uniform(*cfg.noise_snr_db)))
    if rng.random() < cfg.codec_probability:
        kw.update(codec=str(rng.choice(["mp3", "aac"])),
                  codec_kbps=int(rng.choice(cfg.codec_kbps)))
    return EffectsPlan(**kw)


def biquad(kind: str, hz: float, gain_db: float, q: float, rate: int) -> np.ndarray:
    """Second-order section (RBJ audio-EQ cookbook), as a scipy `sos` row."""
    w0 = 2 * np.pi * min(hz, 0.45 * rate) / rate
    a = 10 ** (gain_db / 40)
    alpha = np.sin(w0) / (2 * q)
    cw = np.cos(w0)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cw, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cw, 1 - alpha / a]
    elif kind in ("lowshelf", "highshelf"):
        sa = 2 * np.sqrt(a) * alpha
        sign = 1 if kind == "lowshelf" else -1
        am, ap = (a - 1) * cw, (a + 1) * cw
        b = [a * ((a + 1) - sign * am + sa), sign * 2 * a * ((a - 1) - sign * ap),
             a * ((a + 1) - sign * am - sa)]
        den = [(a + 1) + sign * am + sa, -sign * 2 * ((a - 1) + sign * ap),
               (a + 1) + sign * am - sa]
    elif kind == "highpass":
        b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
        den = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "lowpass":
        b = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
        den = [1 + alpha, -2 * cw, 1 - alpha]
    else:
        raise ValueError(f"unknown filter {kind!r}")
    return np.concatenate([np.asarray(b) / den[0], np.asarray(den) / den[0]])


def impulse_response(plan: EffectsPlan, rate: int, channels: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Synthetic room: sparse early reflections, then noise decaying faster in the treble."""
    assert plan.rt60 is not None
    length = int(min(plan.rt60 * IR_LENGTH_RT60, IR_MAX_SECONDS) * rate)
    t = np.arange(length) / rate
    split = signal.butter(2, 2500 / (rate / 2), output="sos")
    ir = np.zeros((length, channels), np.float32)
    for c in range(channels):
        noise = rng.standard_normal(length)
        low = signal.sosfilt(split, noise)
        high = noise - low
        decay_lo = np.exp(-6.91 * t / plan.rt60)  # -60 dB at rt60
        decay_hi = np.exp(-6.91 * t / (plan.rt60 * plan.brightness))
        tail = low * decay_lo + high * decay_hi
        onset = np.clip((t - plan.predelay) / 0.02, 0.0, 1.0)  # tail builds up after predelay
        ir[:, c] = tail * onset
        for _ in range(int(rng.integers(4, 12))):  # early reflections, 2-60 ms
            k = int(rng.uniform(0.002, 0.06) * rate)
            if k < length:
                ir[k, c] += rng.uniform(-1, 1) * 3.0
    return ir / np.sqrt((ir**2).sum(axis=0, keepdims=True) + 1e-12)


def make_noise(kind: str, frames: int, channels: int, rate: int,
               rng: np.random.Generator) -> np.ndarray:
    if kind == "hum":
        t = np.arange(frames) / rate
        f0 = 50.0 if rng.random() < 0.5 else 60.0
        hum = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3)) / h for h in (1, 2, 3, 5))
        out = np.repeat(hum[:, None], channels, axis=1)
        return out + 0.1 * rng.standard_normal((frames, channels))
    white = rng.standard_normal((frames, channels))
    if kind == "white":
        return white
    spec = sfft.rfft(white.astype(np.float32), axis=0)
    f = np.fft.rfftfreq(frames, 1 / rate).astype(np.float32)
    f[0] = f[1] if len(f) > 1 else 1.0
    exponent = {"pink": 0.5, "brown": 1.0, "room": 1.5}[kind]
    spec /= (f[:, None] / 100.0) ** exponent
    return sfft.irfft(spec, n=frames, axis=0)


def apply_effects(audio: np.ndarray, rate: int, plan: EffectsPlan) -> np.ndarray:
    """The recording chain: room -> microphone EQ -> noise -> codec -> level."""
    rng = np.random.default_rng(plan.seed)
    x = audio.astype(np.float32)  # float32 halves the FFT-convolution time; ample precision
    frames, channels = x.shape
    if plan.rt60 is not None and plan.wet > 0:
        ir = impulse_response(plan, rate, channels, rng)
        wet = signal.fftconvolve(x, ir, axes=0)[:frames]
        dry_rms = np.sqrt(np.mean(x**2)) + 1e-12
        wet *= dry_rms / (np.sqrt(np.mean(wet**2)) + 1e-12)
        x = np.sqrt(1 - plan.wet) * x + np.sqrt(plan.wet) * wet
    if plan.eq:
        sos = np.stack([biquad(k, hz, db, q, rate) for k, hz, db, q in plan.eq])
        x = signal.sosfilt(sos.astype(np.float32), x, axis=0)
    if plan.noise is not None:
        noise = make_noise(plan.noise, frames, channels, rate, rng)
        sig_rms = np.sqrt(np.mean(x**2)) + 1e-12
        noise *= sig_rms / (np.sqrt(np.mean(noise**2)) + 1e-12) * 10 ** (-plan.snr_db / 20)
        x = x + noise.astype(np.float32)
    x = _normalise(x, plan.peak_dbfs)
    if plan.codec is not None:
        x = lossy_round_trip(x, rate, plan.codec, plan.codec_kbps)
        x = _normalise(x, plan.peak_dbfs)  # codecs can overshoot
    return x.astype(np.float32)


def _normalise(x: np.ndarray, peak_dbfs: float) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return (x * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32) if peak > 0 else x
