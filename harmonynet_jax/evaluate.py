"""Transcription metrics with mir_eval: note precision / recall / F1 on onsets (50 ms), on
onsets and offsets, and with velocity; both sides extended by their own sustain pedal first."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import mir_eval
import numpy as np

from harmonynet_jax.tokens import Note


def _arrays(notes: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = np.asarray(notes, np.float64).reshape(-1, 4)
    intervals = arr[:, :2].copy()
    intervals[:, 1] = np.maximum(intervals[:, 1], intervals[:, 0] + 1e-3)
    return intervals, mir_eval.util.midi_to_hz(arr[:, 2]), arr[:, 3]


def note_scores(reference: Sequence[Note], estimate: Sequence[Note]) -> dict[str, float]:
    """P/R/F1 for onset, onset+offset and onset+offset+velocity matching (mir_eval defaults:
    onset 50 ms, offset within max(50 ms, 20 % of the note))."""
    out = {"ref_notes": float(len(reference)), "est_notes": float(len(estimate))}
    names = ("onset", "onset_offset", "onset_offset_velocity")
    if len(reference) == 0 or len(estimate) == 0:
        for name in names:
            out.update({f"{name}_p": 0.0, f"{name}_r": 0.0, f"{name}_f1": 0.0})
        return out
    ref_i, ref_p, ref_v = _arrays(reference)
    est_i, est_p, est_v = _arrays(estimate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = mir_eval.transcription
        scores = {
            "onset": t.precision_recall_f1_overlap(ref_i, ref_p, est_i, est_p,
                                                    offset_ratio=None)[:3],
            "onset_offset": t.precision_recall_f1_overlap(ref_i, ref_p, est_i, est_p)[:3],
            "onset_offset_velocity": mir_eval.transcription_velocity
            .precision_recall_f1_overlap(ref_i, ref_p, ref_v, est_i, est_p, est_v)[:3],
        }
    for name, (p, r, f) in scores.items():
        out.update({f"{name}_p": float(p), f"{name}_r": float(r), f"{name}_f1": float(f)})
    return out
