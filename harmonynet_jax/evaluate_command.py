"""`harmonynet evaluate`: mir_eval scores of the model (or of existing MIDI estimates) against
aligned reference MIDI, per piece and mean, with an optional piano roll and JSON report."""

from __future__ import annotations

import argparse
import time
import traceback

from harmonynet_jax.cli import EXIT_FAILED, EXIT_MODEL, EXIT_OK, UsageError, say


def run_evaluate(args: argparse.Namespace) -> int:
    import json

    from harmonynet_jax import evaluate as ev
    from harmonynet_jax.config import InferenceConfig

    cfg = InferenceConfig()
    has_index = any(args.data.glob("maestro-v*.csv")) or any(args.data.glob("maestro-v*.json"))
    try:
        if has_index:
            pairs = ev.maestro_pairs(args.data, args.split or "test")
        elif args.split is not None:
            raise UsageError(f"--split needs a MAESTRO-layout folder; {args.data} has no "
                             "maestro-v*.csv/json index")
        else:
            pairs = ev.folder_pairs(args.data)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    if not pairs:
        raise UsageError(f"no audio + same-stem MIDI pairs in {args.data}")
    pairs = pairs[: args.limit] if args.limit else pairs
    estimate = _estimates_from_midi(args, ev) if args.estimates else _estimates_from_model(
        args, cfg)
    if estimate is None:
        return EXIT_MODEL
    decoders = ["midi"] if args.estimates else args.decoder
    plot_name = _plot_choice(args, pairs)
    rows: list[dict] = []
    failures: list[tuple[str, str]] = []
    plotted: dict | None = None
    for pair in pairs:
        start = time.perf_counter()
        try:
            ref_notes, ref_pedals = ev.read_reference(pair.midi)
            results, duration = estimate(pair)
        except Exception as err:
            failures.append((pair.name, f"{type(err).__name__}: {err}"))
            say(f"{pair.name}: failed: {err}")
            if args.debug:
                traceback.print_exc()
            continue
        wall = time.perf_counter() - start
        for decoder, (notes, pedals) in results.items():
            scores = ev.piece_scores(ref_notes, ref_pedals, notes, pedals, cfg.frame_fps)
            rows.append({"piece": pair.name, "decoder": decoder, "seconds": duration,
                         "wall_s": wall, **scores})
        if pair.name == plot_name:
            plotted = {"reference": ev.sustained(ref_notes, ref_pedals),
                       "estimates": {d: ev.sustained(n, p) for d, (n, p) in results.items()}}
    print("Scores: mir_eval notes (onset within 50 ms; offsets within max(50 ms, 20 %)), and "
          f"frames at {cfg.frame_fps} fps. Reference and estimate are both extended by their own "
          "sustain pedal (CC64 >= 64) first; the frame decoder has no pedal (its notes are "
          "sounding durations already).")
    means = {}
    for decoder in decoders:
        drows = [r for r in rows if r["decoder"] == decoder]
        if not drows:
            continue
        means[decoder] = ev.mean_scores([{k: v for k, v in r.items()
                                          if k not in ("piece", "decoder")} for r in drows])
        print(f"\ndecoder: {decoder}  ({len(drows)} piece(s))")
        print(ev.format_table(drows, means[decoder]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "data": str(args.data), "split": args.split if has_index else None,
            "estimates": str(args.estimates) if args.estimates else None,
            "conventions": {"onset_tolerance_s": 0.05, "offset_ratio": 0.2,
                            "offset_min_tolerance_s": 0.05, "frame_fps": cfg.frame_fps,
                            "sustain_extension": "both sides, own CC64"},
            "pieces": rows, "mean": means,
            "failed": [{"piece": n, "error": m} for n, m in failures]}, indent=1) + "\n")
        print(f"scores written to {args.json}")
    if args.plot and plotted is not None:
        from harmonynet_jax.pianoroll import plot

        seconds = args.plot_seconds if args.plot_seconds is not None else cfg.plot_seconds
        plot(plotted["reference"], plotted["estimates"], args.plot, fps=cfg.frame_fps,
             end=seconds, title=f"{plot_name}: estimate vs reference (first {seconds:g} s)")
        print(f"piano roll written to {args.plot}")
    if failures:
        say(f"failed: {len(failures)} of {len(pairs)} piece(s): "
             + "; ".join(f"{n} ({m})" for n, m in failures))
    return EXIT_FAILED if failures else EXIT_OK


def _plot_choice(args: argparse.Namespace, pairs) -> str | None:
    if not args.plot:
        return None
    if args.plot_piece is None:
        return pairs[0].name
    matches = [p.name for p in pairs if args.plot_piece in p.name]
    if not matches:
        raise UsageError(f"--plot-piece {args.plot_piece!r} matches no piece")
    return matches[0]


def _estimates_from_midi(args: argparse.Namespace, ev):
    """Estimates read from existing MIDI files (e.g. another transcriber's output)."""
    if not args.estimates.is_dir():
        raise UsageError(f"estimates folder not found: {args.estimates}")

    def estimate(pair):
        for suffix in (".mid", ".midi"):
            path = args.estimates / (pair.name + args.estimate_suffix + suffix)
            if path.is_file():
                notes, pedals = ev.read_reference(path)
                return {"midi": (notes, pedals)}, None
        raise FileNotFoundError(
            f"no estimate {args.estimates / (pair.name + args.estimate_suffix)}.mid")

    return estimate


def _estimates_from_model(args: argparse.Namespace, cfg):
    from harmonynet_jax.inference import (
        ModelUnavailable,
        load_model,
        load_recording,
        run_model,
        tuned_config,
    )
    from harmonynet_jax.tokens import VOCAB

    try:
        model, origin = load_model(args.checkpoint, cfg)
    except ModelUnavailable as err:
        say(f"error: {err}")
        return None
    cfg = tuned_config(origin, cfg)
    args.decoder = args.decoder or [cfg.decoder]
    print(f"model: {origin} (decoders: {', '.join(args.decoder)})")

    def estimate(pair):
        audio = load_recording(pair.audio, cfg)
        label = None if args.no_progress else pair.name
        results = run_model(model, audio, args.decoder, batch_size=args.batch_size, cfg=cfg,
                            progress=label)
        return results, len(audio) / VOCAB.sample_rate

    return estimate
