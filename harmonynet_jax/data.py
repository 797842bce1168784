"""Training batches from a MAESTRO-layout folder, built by the Rust loader on background threads.

A thin wrapper: argument defaults, the ffmpeg and cache locations, warnings into `logging`, and
a state dict for exact resume. The batch layout (all numpy):
  audio [B, S] f32 (16 kHz mono), tokens [B, L] i32, token_mask [B, L] bool,
  onset / frame / offset / velocity [B, T, 88] f32 (T = S // frame_hop), pedal [B, T] f32,
  piece [B] i64, start_sample [B] i64, epoch (int).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harmonynet_jax import _rust
from harmonynet_jax.cache import cache_dir
from harmonynet_jax.ffmpeg import ffmpeg_path

log = logging.getLogger(__name__)

LoaderError = _rust.LoaderError


def default_cache_dir() -> Path:
    """Decoded audio lives in the project's per-user cache (harmonynet_jax.cache)."""
    return cache_dir("audio")


class Stream(Iterator[dict[str, Any]]):
    """Deterministic, sharded, resumable batches of one split.

    Shards are disjoint and together cover every segment slot of an epoch; the same seed and
    shard give the same batches whatever the thread count. `epochs=None` streams forever
    (training); `sequential=True` tiles every piece from its start (evaluation).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        segment_samples: int,
        batch_size: int,
        seed: int,
        shard_index: int = 0,
        shard_count: int = 1,
        threads: int = 2,
        prefetch: int = 4,
        *,
        max_tokens: int = 512,
        frame_hop: int = 320,
        sequential: bool = False,
        epochs: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        position: int = 0,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {root}")
        self.root = root
        self.split = split
        self.seed = seed
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.skipped_files = 0
        self.truncated_segments = 0
        self._inner = _rust.Stream(
            str(root),
            split,
            segment_samples,
            batch_size,
            seed,
            shard_index,
            shard_count,
            max(1, threads),
            max(1, prefetch),
            max_tokens,
            frame_hop,
            sequential,
            epochs,
            ffmpeg_path(),
            str(cache_dir or default_cache_dir()),
            position,
        )
        self._drain_report()

    def _drain_report(self) -> None:
        warnings, skipped, truncated = self._inner.take_report()
        for message in warnings:
            log.warning("%s", message)
        self.skipped_files += skipped
        self.truncated_segments += truncated

    def __next__(self) -> dict[str, Any]:
        try:
            batch = self._inner.next_batch()
        finally:
            self._drain_report()
        if batch is None:
            raise StopIteration
        return batch

    @property
    def position(self) -> int:
        """Index of the next batch; restoring it resumes the exact sequence."""
        return self._inner.position

    @property
    def num_pieces(self) -> int:
        return self._inner.num_pieces()

    @property
    def batches_per_epoch(self) -> int:
        return self._inner.batches_per_epoch()

    def piece(self, index: int) -> dict[str, Any]:
        composer, title, midi, audio, duration = self._inner.piece(index)
        return {
            "composer": composer,
            "title": title,
            "midi_filename": midi,
            "audio_filename": audio,
            "duration": duration,
        }

    def state_dict(self) -> dict[str, int]:
        return {
            "position": self.position,
            "seed": self.seed,
            "shard_index": self.shard_index,
            "shard_count": self.shard_count,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        for key in ("seed", "shard_index", "shard_count"):
            if int(state[key]) != getattr(self, key):
                raise ValueError(
                    f"loader state is for {key}={state[key]}, this stream has {getattr(self, key)}"
                )
        self._inner.seek(int(state["position"]))

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_audio(path: str | os.PathLike, timeout: float = 600.0) -> np.ndarray:
    """Any audio file ffmpeg reads as f32 mono 16 kHz, by the same decoder training uses."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"audio file not found: {path}")
    return _rust.decode_audio(str(path), ffmpeg_path(), timeout)


def decode_failure_reason(err: Exception) -> str:
    """ffmpeg's last line of a decode failure (its most specific one), for one-line messages
    to users; the loader's full message joins ffmpeg's stderr lines with ' | '."""
    message = str(err)
    return message.split(" | ")[-1].split(": ", 1)[-1] if " | " in message else message


def read_midi(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Notes [N, 4] (onset s, key release s, pitch, velocity) and sustain spans [M, 2]."""
    return _rust.read_midi_file(str(path))


def sustain_extend(notes: np.ndarray, pedals: np.ndarray) -> np.ndarray:
    """Notes lengthened while the sustain pedal holds them (the standard metric convention)."""
    notes = np.asarray(notes, np.float64).reshape(-1, 4)
    pedals = np.asarray(pedals, np.float64).reshape(-1, 2)
    return _rust.sustain_extend(notes, pedals)
