"""Transcription metrics with mir_eval: note precision / recall / F1 on onsets (50 ms), on
onsets and offsets, and with velocity, plus frame P/R/F1 on a piano roll; both sides extended by
their own sustain pedal first (`sustained`). Also the evaluation sets: MAESTRO-layout splits and
folders of audio + same-stem MIDI pairs."""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mir_eval
import numpy as np

from harmonynet_jax import data
from harmonynet_jax.pianoroll import frames_needed, roll
from harmonynet_jax.tokens import Note, Pedal
from harmonynet_jax.transcription import AUDIO_SUFFIXES


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


def sustained(notes: Sequence[Sequence[float]], pedals: Sequence[Sequence[float]]) -> list[Note]:
    """Notes lengthened while their own sustain pedal holds them (the standard convention;
    notes without pedal, like the frame decoder's sounding durations, stay as they are)."""
    arr = data.sustain_extend(np.asarray(notes, np.float64).reshape(-1, 4),
                              np.asarray(pedals, np.float64).reshape(-1, 2))
    return [Note(float(a), float(b), int(p), int(v)) for a, b, p, v in arr]


def frame_scores(reference: Sequence[Note], estimate: Sequence[Note], fps: float = 100.0
                 ) -> dict[str, float]:
    """Frame-level P/R/F1 over (frame, key) cells of the two piano rolls (exact pitches, so
    the same counts as mir_eval.multipitch on these rolls)."""
    frames = frames_needed(reference, estimate, fps=fps)
    ref, est = roll(reference, fps, frames), roll(estimate, fps, frames)
    tp, n_est, n_ref = int((ref & est).sum()), int(est.sum()), int(ref.sum())
    p = tp / n_est if n_est else 0.0
    r = tp / n_ref if n_ref else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"frame_p": p, "frame_r": r, "frame_f1": f}


def piece_scores(ref_notes: Sequence[Note], ref_pedals: Sequence[Pedal],
                 est_notes: Sequence[Note], est_pedals: Sequence[Pedal],
                 fps: float = 100.0) -> dict[str, float]:
    """Note and frame scores of one piece, each side extended by its own pedal first."""
    ref, est = sustained(ref_notes, ref_pedals), sustained(est_notes, est_pedals)
    return {**note_scores(ref, est), **frame_scores(ref, est, fps)}


def mean_scores(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean over pieces of every score (note counts summed)."""
    if not rows:
        return {}
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    out = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    for k in ("ref_notes", "est_notes"):
        if k in out:
            out[k] = float(sum(r[k] for r in rows))
    return out


# --- evaluation sets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """A recording and its aligned reference MIDI."""

    name: str
    audio: Path
    midi: Path


MIDI_SUFFIXES = (".mid", ".midi")


def folder_pairs(folder: str | Path) -> list[Pair]:
    """Audio files of `folder` (recursively) that have a same-stem .mid/.midi beside them."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"evaluation folder not found: {folder}")
    pairs = []
    for audio in sorted(folder.rglob("*")):
        if audio.suffix.lower() not in AUDIO_SUFFIXES or not audio.is_file():
            continue
        for suffix in MIDI_SUFFIXES:
            midi = audio.with_suffix(suffix)
            if midi.is_file():
                pairs.append(Pair(str(audio.relative_to(folder).with_suffix("")), audio, midi))
                break
    return pairs


def maestro_pairs(root: str | Path, split: str) -> list[Pair]:
    """Pieces of one split of a MAESTRO-layout folder (maestro-v3.0.0.csv or .json index)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    rows = _maestro_rows(root)
    splits = sorted({r["split"] for r in rows})
    if split not in splits:
        raise ValueError(f"split {split!r} not in {root} (it has {', '.join(splits)})")
    return [Pair(str(Path(r["audio_filename"]).with_suffix("")), root / r["audio_filename"],
                 root / r["midi_filename"]) for r in rows if r["split"] == split]


def _maestro_rows(root: Path) -> list[dict[str, str]]:
    csvs = sorted(root.glob("maestro-v*.csv"))
    if csvs:
        with open(csvs[-1], newline="") as f:
            return list(csv.DictReader(f))
    jsons = sorted(root.glob("maestro-v*.json"))
    if not jsons:
        raise FileNotFoundError(f"no maestro-v*.csv or maestro-v*.json index in {root}")
    columns = json.loads(jsons[-1].read_text())  # column -> {row id -> value}
    ids = list(columns["split"])
    return [{k: str(v[i]) for k, v in columns.items()} for i in ids]


def read_reference(midi: str | Path) -> tuple[list[Note], list[Pedal]]:
    """Key-press notes and CC64 pedal spans of a MIDI file (the loader's own parser)."""
    notes, pedals = data.read_midi(midi)
    return ([Note(float(a), float(b), int(p), int(v)) for a, b, p, v in notes],
            [Pedal(float(a), float(b)) for a, b in pedals])


TABLE_COLUMNS = (("onset_p", "On P"), ("onset_r", "On R"), ("onset_f1", "On F1"),
                 ("onset_offset_f1", "On+Off F1"), ("onset_offset_velocity_f1", "+Vel F1"),
                 ("frame_f1", "Frame F1"))


def format_table(rows: Sequence[dict], mean: dict[str, float] | None = None,
                 label: str = "piece") -> str:
    """Plain-text table: one line per row (`row[label]`), then the mean."""
    width = max([len(label), 4, *(len(str(r[label])) for r in rows)])
    head = f"{label:<{width}}  {'ref/est':>11}" + "".join(f"  {t:>9}" for _, t in TABLE_COLUMNS)
    lines = [head, "-" * len(head)]

    def line(name: str, r: dict) -> str:
        counts = f"{int(r.get('ref_notes', 0))}/{int(r.get('est_notes', 0))}"
        return f"{name:<{width}}  {counts:>11}" + "".join(
            f"  {r.get(k, float('nan')):>9.3f}" for k, _ in TABLE_COLUMNS)

    lines += [line(str(r[label]), r) for r in rows]
    if mean:
        lines += ["-" * len(head), line("mean", mean)]
    return "\n".join(lines)
