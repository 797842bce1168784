"""Frame decoder accuracy against the context each overlapping segment gets at its edges
(`InferenceConfig.frame_margin_s`), with the encoder work each margin costs.

    python benchmarks/frame_margin.py --data /work/data/synth1 --split validation,test
    python benchmarks/frame_margin.py --data ../shared/realpiano
    [--checkpoint PATH] [--margins 0,0.16,0.24,0.32,0.5] [--limit N]

The model's own thresholds (its weights file's header) are used; mean mir_eval scores over
the pieces, as `harmonynet evaluate` computes them.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from harmonynet_jax.config import InferenceConfig
from harmonynet_jax.evaluate import (
    folder_pairs,
    maestro_pairs,
    mean_scores,
    piece_scores,
    read_reference,
)
from harmonynet_jax.frames import FrameDecoding
from harmonynet_jax.inference import (
    frame_margin,
    frame_probabilities,
    load_model,
    load_recording,
    tuned_config,
)
from harmonynet_jax.tokens import VOCAB


def pairs_of(data: Path, splits: str) -> list:
    if any(data.glob("maestro-v*.csv")):
        return [p for split in splits.split(",") for p in maestro_pairs(data, split)]
    return folder_pairs(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="validation", help="MAESTRO splits, comma-separated")
    ap.add_argument("--checkpoint", default=None, help="default: the bundled model")
    ap.add_argument("--margins", default="0,0.16,0.24,0.32,0.5")
    ap.add_argument("--limit", type=int, default=0, help="first N pieces only (0: all)")
    args = ap.parse_args()

    model, origin = load_model(args.checkpoint)
    base = tuned_config(origin, InferenceConfig())
    pairs = pairs_of(args.data, args.split)
    pairs = pairs[: args.limit] if args.limit else pairs
    margins = [float(m) for m in args.margins.split(",")]
    decoding = FrameDecoding(base.onset_threshold, base.frame_threshold, base.min_note_frames)
    hop_s = model.config.frontend.hop / VOCAB.sample_rate
    rows: dict[float, list[dict[str, float]]] = {m: [] for m in margins}
    for pair in pairs:
        audio = load_recording(pair.audio, base)
        reference, pedals = read_reference(pair.midi)
        for m in margins:
            joiner, frames = frame_probabilities(model, audio,
                                                 dataclasses.replace(base, frame_margin_s=m))
            rows[m].append(piece_scores(reference, pedals,
                                        joiner.finish(frames, hop_s, decoding), []))
    which = f" ({args.split})" if any(args.data.glob("maestro-v*.csv")) else ""
    print(f"{origin}: {len(pairs)} pieces of {args.data}{which}; thresholds onset "
          f"{base.onset_threshold} frame {base.frame_threshold}")
    print("margin s  encoder work  onset P  onset R  onset F1  on+off F1  +vel F1  frame F1")
    t = model.config.frames
    for m in margins:
        kept = t - 2 * frame_margin(model, dataclasses.replace(base, frame_margin_s=m))
        s = mean_scores(rows[m])
        print(f"{m:8.2f}  {t / kept:11.2f}x  {s['onset_p']:7.3f}  {s['onset_r']:7.3f}  "
              f"{s['onset_f1']:8.3f}  {s['onset_offset_f1']:9.3f}  "
              f"{s['onset_offset_velocity_f1']:7.3f}  {s['frame_f1']:8.3f}")


if __name__ == "__main__":
    main()
