"""Audio files through ffmpeg: encode to the output format, decode back, lossy round trips.

ffmpeg is the tool the loader decodes with, so files written here decode there identically
(including MP3 encoder-delay handling), and it resamples with a delay-compensated filter.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..ffmpeg import ffmpeg_path

ENCODER_ARGS = {
    "flac": ["-c:a", "flac", "-sample_fmt", "s16"],
    "wav": ["-c:a", "pcm_s16le"],
    "mp3": ["-c:a", "libmp3lame"],
    "m4a": ["-c:a", "aac"],
}


class CodecError(RuntimeError):
    pass


def _run(cmd: list[str], data: bytes | None = None) -> bytes:
    proc = subprocess.run(cmd, input=data, capture_output=True, check=False)
    if proc.returncode != 0:
        raise CodecError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')[-1500:]}")
    return proc.stdout


def encode(audio: np.ndarray, rate: int, path: Path, *, out_rate: int | None = None,
           channels: int | None = None, kbps: int = 192) -> None:
    """Write float32 (frames, ch) audio to `path`; the format follows the file extension."""
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in ENCODER_ARGS:
        raise CodecError(f"unsupported output format: {fmt}")
    audio = np.ascontiguousarray(audio, dtype="<f4")
    cmd = [ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "f32le", "-ar", str(rate), "-ac", str(audio.shape[1]), "-i", "pipe:0",
           "-ar", str(out_rate or rate), "-ac", str(channels or audio.shape[1]),
           *ENCODER_ARGS[fmt]]
    if fmt in ("mp3", "m4a"):
        cmd += ["-b:a", f"{kbps}k"]
    if fmt == "mp3":
        cmd += ["-write_xing", "1"]  # the LAME header lets decoders drop the encoder delay
    cmd += ["-map_metadata", "-1", "-fflags", "+bitexact", str(path)]
    _run(cmd, audio.tobytes())


def probe_rate_channels(path: Path) -> tuple[int, int]:
    """Native sample rate and channel count of an audio file (from ffmpeg's stream line)."""
    proc = subprocess.run([ffmpeg_path(), "-nostdin", "-hide_banner", "-i", str(path)],
                          capture_output=True, check=False)
    text = proc.stderr.decode(errors="replace")
    m = re.search(r"Audio: [^,]+(?:\([^)]*\))?, (\d+) Hz, ([^,]+),", text)
    if not m:
        raise CodecError(f"no audio stream in {path}: {text[-500:]}")
    layout = m.group(2).strip()
    channels = {"mono": 1, "stereo": 2}.get(layout)
    if channels is None:
        m2 = re.match(r"(\d+) channels", layout)
        channels = int(m2.group(1)) if m2 else 2
    return int(m.group(1)), channels


def decode(path: Path, rate: int | None = None, mono: bool = False) -> tuple[np.ndarray, int]:
    """Decode any file to float32 (frames, ch), at `rate` if given else the file's own."""
    native_rate, channels = probe_rate_channels(path)
    rate = rate or native_rate
    channels = 1 if mono else channels
    raw = _run([ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error",
                "-i", str(path), "-f", "f32le", "-ac", str(channels), "-ar", str(rate),
                "pipe:1"])
    return np.frombuffer(raw, dtype="<f4").reshape(-1, channels).copy(), rate


def best_lag(reference: np.ndarray, signal: np.ndarray, max_lag: int,
             window: int = 1 << 18) -> int:
    """Lag (samples) by which `signal` trails `reference`, by FFT cross-correlation over the
    first `window` samples (a codec's delay is constant, so a few seconds settle it)."""
    ref = reference.mean(axis=1)
    sig = signal.mean(axis=1)
    n = min(len(ref), len(sig), window)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    xc = np.fft.irfft(np.fft.rfft(sig[:n], size) * np.conj(np.fft.rfft(ref[:n], size)), size)
    lags = np.concatenate([xc[: max_lag + 1], xc[-max_lag:]])
    idx = int(np.argmax(lags))
    return idx if idx <= max_lag else idx - 2 * max_lag - 1


def lossy_round_trip(audio: np.ndarray, rate: int, codec: str, kbps: int) -> np.ndarray:
    """Audio after an MP3 or AAC encode/decode, re-aligned sample-exactly to the input.

    Codec priming delay differs between encoders and containers, so rather than trusting
    metadata the output is aligned to the input by cross-correlation, then trimmed/padded.
    """
    ext = {"mp3": "mp3", "aac": "m4a"}[codec]
    fd, name = tempfile.mkstemp(suffix=f".{ext}", prefix="roundtrip-")
    os.close(fd)
    try:
        encode(audio, rate, Path(name), kbps=kbps)
        out, _ = decode(Path(name), rate=rate)
    finally:
        os.unlink(name)
    lag = best_lag(audio, out, max_lag=min(len(audio) - 1, 8192))
    out = out[lag:] if lag >= 0 else np.concatenate([np.zeros((-lag, out.shape[1]), "f4"), out])
    if len(out) < len(audio):
        out = np.concatenate([out, np.zeros((len(audio) - len(out), out.shape[1]), "f4")])
    return out[: len(audio)]
