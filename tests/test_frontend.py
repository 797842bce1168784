"""The log-mel front end against an independent numpy reference (np.fft.rfft, a slaney-scale
filterbank written out per filter), its frame convention, and its fp16 headroom."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harmonynet_jax.config import FrontendConfig
from harmonynet_jax.frontend import LogMelFrontend

SR = 16_000
CONFIGS = {
    "default": FrontendConfig(),  # n_fft 1024, hop 320, 128 mels
    "fine": FrontendConfig(n_fft=2048, hop=160, n_mels=229),
}
TOLERANCE = 2e-3  # max |log-mel difference| (natural log) vs the float64 reference


def slaney_mel(f: float) -> float:
    """Slaney's Auditory Toolbox mel scale: 3 mels per 200 Hz to 1 kHz, then logarithmic."""
    if f < 1000.0:
        return 3.0 * f / 200.0
    return 15.0 + 27.0 * np.log(f / 1000.0) / np.log(6.4)


def slaney_hz(m: float) -> float:
    if m < 15.0:
        return 200.0 * m / 3.0
    return 1000.0 * 6.4 ** ((m - 15.0) / 27.0)


def reference_filterbank(cfg: FrontendConfig) -> np.ndarray:
    """[bins, mels], one triangle (peak 1) at a time."""
    n_bins = cfg.n_fft // 2 + 1
    lo_mel, hi_mel = slaney_mel(cfg.f_min), slaney_mel(cfg.f_max)
    step = (hi_mel - lo_mel) / (cfg.n_mels + 1)
    out = np.zeros((n_bins, cfg.n_mels))
    for m in range(cfg.n_mels):
        left, centre, right = (slaney_hz(lo_mel + (m + j) * step) for j in range(3))
        for k in range(n_bins):
            f = k * SR / cfg.n_fft
            if left < f <= centre:
                out[k, m] = (f - left) / (centre - left)
            elif centre < f < right:
                out[k, m] = (right - f) / (right - centre)
    return out


def reference_log_mel(x: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """Frame i = Hann window centred on sample i*hop + hop/2 (zeros outside), float64."""
    frames = len(x) // cfg.hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.n_fft) / cfg.n_fft)
    out = np.zeros((frames, cfg.n_fft))
    for i in range(frames):
        start = i * cfg.hop + cfg.hop // 2 - cfg.n_fft // 2
        for j in range(cfg.n_fft):
            if 0 <= start + j < len(x):
                out[i, j] = x[start + j]
    spectrum = np.fft.rfft(out * window, axis=1) * (cfg.magnitude_scale * 2 / window.sum())
    return np.log(np.abs(spectrum) ** 2 @ reference_filterbank(cfg) + cfg.log_floor)


def make_signal(samples: int, seed: int = 0) -> np.ndarray:
    """Two piano-range partials, noise, a loud attack and a very quiet tail."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / SR
    x = 0.4 * np.sin(2 * np.pi * 110.0 * t) + 0.2 * np.sin(2 * np.pi * 1318.5 * t + 1.0)
    x += 0.01 * rng.standard_normal(samples)
    x[samples // 3 : samples // 3 + 400] += 0.3 * rng.standard_normal(400)
    x[2 * samples // 3 :] *= 1e-3
    return x


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("samples", [8_000, 8_000 + 77])
def test_matches_numpy_reference(name: str, samples: int) -> None:
    cfg = CONFIGS[name]
    x = make_signal(samples)
    got = np.asarray(LogMelFrontend(cfg, SR)(jnp.asarray(x[None], jnp.float32)))[0]
    want = reference_log_mel(x, cfg)
    assert got.shape == (samples // cfg.hop, cfg.n_mels)
    assert got.dtype == np.float32
    err = np.abs(got - want).max()
    assert err < TOLERANCE, f"max |log-mel error| {err:.2e}"
    # The comparison covers a real dynamic range (loud partials down to the floor).
    assert want.max() - want.min() > 12.0


@pytest.mark.parametrize("name", list(CONFIGS))
def test_frame_i_is_centred_on_its_hop(name: str) -> None:
    """A click inside [i*hop, (i+1)*hop) — the loader's frame-target interval — peaks at i."""
    cfg = CONFIGS[name]
    fe = LogMelFrontend(cfg, SR)
    samples = 40 * cfg.hop
    frames = [0, 1, 17, 39]
    audio = np.zeros((len(frames), samples), np.float32)
    for row, i in enumerate(frames):
        audio[row, i * cfg.hop + cfg.hop // 2 - 8 : i * cfg.hop + cfg.hop // 2 + 8] = 0.5
    energy = np.asarray(fe(jnp.asarray(audio))).max(axis=-1)  # [rows, T]
    assert energy.shape == (len(frames), 40)
    np.testing.assert_array_equal(energy.argmax(axis=1), frames)


def test_fp16_headroom() -> None:
    """Full-scale signals keep DFT power under the fp16 maximum; fp16 runs stay finite."""
    cfg = CONFIGS["default"]
    fe = LogMelFrontend(cfg, SR)
    n = 16_000
    t = np.arange(n) / SR
    rng = np.random.default_rng(1)
    worst = np.stack(
        [
            np.sin(2 * np.pi * 441.0 * t),
            np.sign(np.sin(2 * np.pi * 220.0 * t)),  # square wave
            np.ones(n),
            rng.choice([-1.0, 1.0], n),  # full-scale binary noise
            np.zeros(n),
        ]
    ).astype(np.float32)
    power = np.asarray(fe.power(jnp.asarray(worst)))
    x32 = np.asarray(fe(jnp.asarray(worst)))
    mel = np.exp(x32.astype(np.float64)) - cfg.log_floor
    fp16_max = float(np.finfo(np.float16).max)
    assert power.max() < fp16_max / 2 and mel.max() < fp16_max / 2
    # A full-scale sinusoid has magnitude `magnitude_scale` (to the window's scalloping loss).
    assert 0.8 * cfg.magnitude_scale**2 < power[0].max() < 1.05 * cfg.magnitude_scale**2
    assert cfg.log_floor >= np.finfo(np.float16).tiny  # a normal fp16 number

    x16 = np.asarray(fe(jnp.asarray(worst, jnp.float16))).astype(np.float32)
    assert np.isfinite(x16).all()
    # Audio-like rows (sine, square, noise; not DC, whose leakage fp16 cannot cancel): mel
    # bands within 40 dB of each frame's peak agree with float32 to 2% in power.
    audio_like = [0, 1, 3]
    loud = x32[audio_like] > x32[audio_like].max(axis=-1, keepdims=True) - 4 * np.log(10.0)
    assert np.abs(x16[audio_like] - x32[audio_like])[loud].max() < 0.02


def test_frontend_has_no_arrays() -> None:
    fe = LogMelFrontend(CONFIGS["fine"], SR)
    assert jax.tree.leaves(fe) == []  # constants live in the static config, not as leaves
    assert jax.tree.leaves(eqx.filter(fe, eqx.is_array)) == []


def test_rejects_empty_filters() -> None:
    with pytest.raises(ValueError, match="cover no DFT bin"):
        LogMelFrontend(FrontendConfig(n_fft=256, hop=160, n_mels=229), SR)
