"""Turn a training run into the bundled model: calibrate the frame decoder's thresholds and
shortest note on a validation split of the training data (never on the real recordings used
to judge it), then write compact float16 weights whose header carries the decoder settings.

    python -m harmonynet_jax.ship --run runs/p0 --data DIR [--split validation] [--limit 8]
                                  [--decoder frames] [--out models/harmonynet.eqx]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from harmonynet_jax.config import InferenceConfig
from harmonynet_jax.evaluate import mean_scores, piece_scores, read_reference
from harmonynet_jax.frames import FrameDecoding
from harmonynet_jax.model import HarmonyNet
from harmonynet_jax.tokens import VOCAB

ONSET_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
FRAME_GRID = (0.3, 0.4, 0.5)
# Shortest note kept, in frames: a one-frame blip is mostly a ghost (an octave or a partial
# of a struck note); longer minimums start dropping real soft notes.
MIN_FRAMES_GRID = (1, 2, 3, 4)


def calibrate(model: HarmonyNet, pairs, cfg: InferenceConfig) -> tuple[dict, list[dict]]:
    """Best (onset, frame) thresholds and shortest note by mean note-onset F1 (ties:
    onset+offset F1)."""
    from harmonynet_jax.inference import frame_probabilities, load_recording

    hop_s = model.config.frontend.hop / VOCAB.sample_rate
    pieces = []
    for pair in pairs:
        joiner, frames = frame_probabilities(model, load_recording(pair.audio, cfg), cfg)
        pieces.append((joiner, frames, *read_reference(pair.midi)))
    table = []
    for on, fr, shortest in itertools.product(ONSET_GRID, FRAME_GRID, MIN_FRAMES_GRID):
        decoding = FrameDecoding(on, fr, shortest)
        rows = [piece_scores(ref, pedals, joiner.finish(frames, hop_s, decoding), [])
                for joiner, frames, ref, pedals in pieces]
        table.append({"onset_threshold": on, "frame_threshold": fr,
                      "min_note_frames": shortest, **mean_scores(rows)})
    best = max(table, key=lambda r: (r["onset_f1"], r["onset_offset_f1"]))
    return best, table


def main(argv: list[str] | None = None) -> None:
    from harmonynet_jax.evaluate import maestro_pairs
    from harmonynet_jax.weights import load_weights, save_weights

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="training run folder or weights")
    ap.add_argument("--data", type=Path, required=True, help="MAESTRO-layout training data")
    ap.add_argument("--split", default="validation")
    ap.add_argument("--limit", type=int, default=8, help="validation pieces to calibrate on")
    ap.add_argument("--decoder", choices=("frames", "tokens"), default="frames")
    ap.add_argument("--out", type=Path, default=Path(InferenceConfig().model_path))
    args = ap.parse_args(argv)

    cfg = InferenceConfig()
    model = load_weights(args.run)
    pairs = maestro_pairs(args.data, args.split)[: args.limit]
    best, table = calibrate(model, pairs, cfg)
    for row in table:
        print(f"onset {row['onset_threshold']:.1f} frame {row['frame_threshold']:.1f} "
              f"min frames {row['min_note_frames']}: "
              f"onset F1 {row['onset_f1']:.3f}  onset+offset F1 {row['onset_offset_f1']:.3f}")
    info = {
        "decoder": args.decoder,
        "onset_threshold": best["onset_threshold"],
        "frame_threshold": best["frame_threshold"],
        "min_note_frames": best["min_note_frames"],
        "frame_margin_s": cfg.frame_margin_s,  # the tiling the thresholds were chosen with
        "calibrated_on": f"{args.data.name}/{args.split} ({len(pairs)} pieces)",
        "calibration_scores": {k: round(v, 4) for k, v in best.items()
                               if isinstance(v, float)},
        "source_run": str(args.run),
    }
    meta = args.run / "checkpoints"
    if meta.is_dir():
        from harmonynet_jax.train.checkpoint import Checkpointer

        ck = Checkpointer(meta)
        info["step"] = ck.latest_step()
        info["phase"] = ck.meta().get("phase")
    path = save_weights(args.out, model, "float16", info=info)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB): {json.dumps(info)}")


if __name__ == "__main__":
    main()
