"""Piano rolls: notes rasterised on a frame grid (the frame metric), and a PNG of an estimate
against its reference, coloured by agreement, to see at a glance what a model misses."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from harmonynet_jax.tokens import VOCAB

# Colours (RGB) of the comparison plot.
BOTH = (0.10, 0.55, 0.20)  # reference and estimate agree
MISSED = (0.95, 0.45, 0.35)  # reference only
EXTRA = (0.25, 0.45, 0.95)  # estimate only
EMPTY = (1.0, 1.0, 1.0)


def roll(notes: Sequence[Sequence[float]], fps: float, frames: int | None = None) -> np.ndarray:
    """bool [frames, 88]: key k sounds in frame t when a note covers [t, t+1) / fps, with onset
    and offset rounded to the nearest frame (every note at least one frame), as in the
    Onsets & Frames evaluation."""
    arr = np.asarray(notes, np.float64).reshape(-1, 4)
    starts = np.round(arr[:, 0] * fps).astype(np.int64)
    ends = np.maximum(starts + 1, np.round(arr[:, 1] * fps).astype(np.int64))
    if frames is None:
        frames = int(ends.max()) if len(ends) else 0
    out = np.zeros((frames, VOCAB.num_pitches), bool)
    keys = arr[:, 2].astype(np.int64) - VOCAB.min_pitch
    for s, e, k in zip(starts, ends, keys, strict=True):
        if 0 <= k < VOCAB.num_pitches and s < frames:
            out[max(s, 0): min(e, frames), k] = True
    return out


def frames_needed(*note_lists: Sequence[Sequence[float]], fps: float) -> int:
    """Frames that hold every note of all lists."""
    ends = [float(n[1]) for notes in note_lists for n in notes]
    return int(np.ceil(max(ends, default=0.0) * fps)) + 1


def comparison_image(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """RGB [88, frames, 3], low keys at the bottom once drawn with origin='lower'."""
    img = np.empty((*reference.shape, 3), np.float32)
    img[:] = EMPTY
    img[reference & estimate] = BOTH
    img[reference & ~estimate] = MISSED
    img[~reference & estimate] = EXTRA
    return img.transpose(1, 0, 2)


def plot(
    reference: Sequence[Sequence[float]],
    estimates: Mapping[str, Sequence[Sequence[float]]],
    path: str | os.PathLike,
    *,
    fps: float = 100.0,
    start: float = 0.0,
    end: float | None = None,
    title: str | None = None,
) -> Path:
    """PNG with one panel per estimate (e.g. per decoder) over the same reference, from
    `start` to `end` seconds (default: the end of the notes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    frames = frames_needed(reference, *estimates.values(), fps=fps)
    lo = max(0, int(start * fps))
    hi = frames if end is None else max(lo + 1, min(frames, int(np.ceil(end * fps))))
    ref = roll(reference, fps, frames)[lo:hi]
    panels = max(1, len(estimates))
    width = min(24.0, max(8.0, (hi - lo) / fps * 0.4))
    fig, axes = plt.subplots(panels, 1, figsize=(width, 3.2 * panels), squeeze=False)
    for ax, (label, notes) in zip(axes[:, 0], estimates.items(), strict=False):
        est = roll(notes, fps, frames)[lo:hi]
        ax.imshow(comparison_image(ref, est), aspect="auto", origin="lower", interpolation="none",
                  extent=(lo / fps, hi / fps, VOCAB.min_pitch - 0.5, VOCAB.max_pitch + 0.5))
        ax.set_ylabel("MIDI pitch")
        ax.set_title(label, fontsize=10, loc="right")
    axes[-1, 0].set_xlabel("seconds")
    handles = [Patch(color=BOTH, label="both"), Patch(color=MISSED, label="reference only"),
               Patch(color=EXTRA, label="estimate only")]
    axes[0, 0].legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8,
                      ncol=3, frameon=False, borderaxespad=0.2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
