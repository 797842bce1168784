"""The encoder's frame head as a transcriber (Onsets & Frames decoding): a note starts only
where the onset head fires, lasts while the frame head holds, and takes its velocity from the
velocity head at the onset. Notes come out as sounding durations (pedal included)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harmonynet_jax.tokens import VOCAB, Note


@dataclass(frozen=True)
class FrameDecoding:
    onset_threshold: float = 0.5
    frame_threshold: float = 0.5
    min_frames: int = 1  # shortest note, in frames


def frames_to_notes(
    onset: np.ndarray,
    frame: np.ndarray,
    velocity: np.ndarray,
    hop_seconds: float,
    cfg: FrameDecoding = FrameDecoding(),
    start: float = 0.0,
) -> list[Note]:
    """Probabilities [T, 88] (velocity in 0..1) -> notes, times from `start`.

    Frame i covers [i·hop, (i+1)·hop); onsets and offsets are placed at frame centres.
    """
    on = onset >= cfg.onset_threshold
    active = frame >= cfg.frame_threshold
    # A new onset is a rising edge of the onset head.
    rising = on & ~np.vstack([np.zeros((1, on.shape[1]), bool), on[:-1]])
    notes: list[Note] = []
    frames = on.shape[0]
    for key in np.flatnonzero(rising.any(axis=0)):
        starts = np.flatnonzero(rising[:, key])
        for n, t0 in enumerate(starts):
            limit = starts[n + 1] if n + 1 < len(starts) else frames
            t1 = t0 + 1
            while t1 < limit and (active[t1, key] or on[t1, key]):
                t1 += 1
            if t1 - t0 < cfg.min_frames:
                continue
            vel = int(np.clip(round(float(velocity[t0, key]) * 127), 1, 127))
            notes.append(Note(start + (t0 + 0.5) * hop_seconds, start + (t1 - 0.5) * hop_seconds
                              if t1 - t0 > 1 else start + (t0 + 1.0) * hop_seconds,
                              int(key) + VOCAB.min_pitch, vel))
    notes.sort(key=lambda x: (x.onset, x.pitch))
    return notes
