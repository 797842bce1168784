"""Log-mel front end computed inside the model, without an FFT op.

The short-time DFT is a fixed basis (Hann window x cos / -sin) applied as a strided 1-D
convolution, so exported graphs (TFLite, CoreML, StableHLO) only need conv, mul, add, matmul and
log. The basis and the mel matrix are numpy constants built from the static config: they are not
pytree leaves, so no optimiser or checkpoint ever sees them.

Frame convention: frame i is centred on sample c_i = i*hop + hop/2, the middle of the interval
[i*hop, (i+1)*hop) that the loader's frame target i covers. Its window spans
[c_i - n_fft/2, c_i + n_fft/2); audio outside the segment counts as zeros. A segment of S
samples gives T = S // hop frames (samples of a trailing partial hop only enter the last
windows).
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from harmonynet_jax.config import FrontendConfig

# Slaney's mel scale (as in the Auditory Toolbox and librosa's default): linear below 1 kHz,
# logarithmic above.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    hz = np.asarray(hz, np.float64)
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, 1e-10) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


def mel_filterbank(cfg: FrontendConfig, sample_rate: int) -> np.ndarray:
    """Triangular filters [n_fft//2 + 1, n_mels] with peak 1, centres equally spaced in mel.

    Peak-1 (unnormalised) triangles keep a sinusoid's mel power equal to its bin power whatever
    n_fft is, so the fp16 bounds in FrontendConfig hold for every configuration.
    """
    if cfg.f_max > sample_rate / 2 or not 0 <= cfg.f_min < cfg.f_max:
        raise ValueError(f"need 0 <= f_min < f_max <= {sample_rate / 2} Hz")
    freqs = np.arange(cfg.n_fft // 2 + 1) * sample_rate / cfg.n_fft
    edges = mel_to_hz(np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2))
    lo, centre, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lo) / (centre - lo)
    falling = (hi - freqs[None, :]) / (hi - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))  # [n_mels, bins]
    if not np.all(weights.max(axis=1) > 0):
        raise ValueError("some mel filters cover no DFT bin: lower n_mels or raise n_fft")
    return weights.T


def padding(cfg: FrontendConfig, num_samples: int) -> tuple[int, int]:
    """(left, right) zero padding that centres frame i on sample i*hop + hop/2.

    `right` may be negative (a trailing partial hop): the padded signal is then cropped.
    """
    left = (cfg.n_fft - cfg.hop) // 2
    frames = num_samples // cfg.hop
    right = (frames - 1) * cfg.hop + cfg.n_fft - left - num_samples
    return left, right


@functools.lru_cache(maxsize=8)
def _constants(cfg: FrontendConfig, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Conv kernel [n_fft, 1, 2K] (cos rows, then -sin rows) and mel matrix [K, n_mels].

    Only the K DFT bins that some mel filter touches are kept (the others cost compute and add
    nothing).
    """
    if cfg.n_fft % 2 or cfg.hop % 2 or cfg.hop > cfg.n_fft:
        raise ValueError("n_fft and hop must be even, with hop <= n_fft")
    mel = mel_filterbank(cfg, sample_rate)
    used = np.flatnonzero(mel.max(axis=1) > 0)
    first, last = int(used[0]), int(used[-1])
    bins = np.arange(first, last + 1)
    n = np.arange(cfg.n_fft)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / cfg.n_fft)  # periodic Hann
    # A full-scale sinusoid at a bin centre has |sum(w x e^-iwt)| = sum(w) / 2.
    scale = cfg.magnitude_scale * 2.0 / window.sum()
    phase = 2.0 * np.pi * np.outer(n, bins) / cfg.n_fft  # [n_fft, K]
    basis = np.concatenate([np.cos(phase), -np.sin(phase)], axis=1) * (window * scale)[:, None]
    kernel = basis[:, None, :].astype(np.float32)  # [n_fft, in=1, out=2K]
    return kernel, mel[first : last + 1].astype(np.float32)


class LogMelFrontend(eqx.Module):
    """Raw audio [B, S] in [-1, 1] -> log-mel [B, S // hop, n_mels].

    Computes in the audio's float dtype (the model passes float32; float16 stays finite, which
    is what an fp16 CoreML/TFLite conversion will run). Has no array leaves (only static
    config), so training cannot update it.
    """

    config: FrontendConfig = eqx.field(static=True)
    sample_rate: int = eqx.field(static=True)

    def __init__(self, config: FrontendConfig, sample_rate: int | None = None):
        if sample_rate is None:
            from harmonynet_jax.tokens import VOCAB

            sample_rate = VOCAB.sample_rate
        self.config = config
        self.sample_rate = int(sample_rate)
        _constants(config, self.sample_rate)  # validate now rather than at first trace

    def power(self, audio: Float[Array, "B S"]) -> Float[Array, "B T K"]:
        """Scaled DFT power of the kept bins; a full-scale sinusoid gives magnitude_scale**2."""
        cfg = self.config
        kernel, _ = _constants(cfg, self.sample_rate)
        num_samples = audio.shape[-1]
        if num_samples < cfg.hop:
            raise ValueError(f"need at least one hop ({cfg.hop} samples), got {num_samples}")
        left, right = padding(cfg, num_samples)
        dtype = audio.dtype if jnp.issubdtype(audio.dtype, jnp.floating) else jnp.float32
        x = jnp.pad(audio.astype(dtype), ((0, 0), (left, max(right, 0))))
        x = x[:, : x.shape[1] + min(right, 0)]  # [B, (T-1)*hop + n_fft]
        spec = jax.lax.conv_general_dilated(
            x[:, :, None],
            jnp.asarray(kernel, dtype),
            window_strides=(cfg.hop,),
            padding="VALID",
            dimension_numbers=("NWC", "WIO", "NWC"),
            precision=jax.lax.Precision.HIGHEST,  # TPUs would otherwise use one bf16 pass
        )  # [B, T, 2K]
        k = kernel.shape[-1] // 2
        return jnp.square(spec[..., :k]) + jnp.square(spec[..., k:])

    def __call__(self, audio: Float[Array, "B S"]) -> Float[Array, "B T M"]:
        _, mel = _constants(self.config, self.sample_rate)
        power = self.power(audio)
        mel_power = jnp.matmul(
            power, jnp.asarray(mel, power.dtype), precision=jax.lax.Precision.HIGHEST
        )
        return jnp.log(mel_power + self.config.log_floor)
