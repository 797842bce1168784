"""The `harmonynet` command: `transcribe` (audio -> MIDI / JSON / MusicXML / PDF), `evaluate`
(mir_eval scores against aligned MIDI), `check` (dependencies, engravers, ffmpeg, JAX) and
`serve` (the web service, harmonynet_jax.service).

Errors the user can act on are one line on stderr, never a traceback (`--debug` shows it), and
a batch keeps going past a bad file. Exit codes: 0 all done; 1 some inputs or outputs failed;
2 usage error; 3 the model could not be loaded (none bundled yet, or a bad checkpoint).
Heavy imports (JAX, the model) happen after argument parsing, so mistakes are reported fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from harmonynet_jax.transcription import AUDIO_SUFFIXES

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MODEL = 0, 1, 2, 3
FORMATS = {"midi": ".mid", "json": ".json", "musicxml": ".musicxml", "pdf": ".pdf"}
DECODER_CHOICES = ("tokens", "frames")


class UsageError(Exception):
    pass


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_formats(text: str) -> list[str]:
    names = [f.strip().lower() for f in text.split(",") if f.strip()]
    names = ["musicxml" if f in ("xml", "mxl") else "midi" if f == "mid" else f for f in names]
    bad = [f for f in names if f not in FORMATS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(bad) or text!r}; choose from {', '.join(FORMATS)}")
    return list(dict.fromkeys(names))


def _decoders(text: str) -> list[str]:
    names = [d.strip() for d in text.split(",") if d.strip()]
    if not names or any(d not in DECODER_CHOICES for d in names):
        raise argparse.ArgumentTypeError(f"decoders are {' and '.join(DECODER_CHOICES)}")
    return list(dict.fromkeys(names))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_time_sig(text: str) -> str:
    from harmonynet_jax.transcription import parse_time_signature

    try:
        parse_time_signature(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def parse_tempo(text: str) -> float:
    value = float(text)
    if not 10 <= value <= 400:
        raise argparse.ArgumentTypeError(f"tempo must be 10..400 BPM, got {text}")
    return value


def add_transcribe_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("inputs", nargs="+", metavar="IN", type=Path,
                    help="audio files and/or folders (searched recursively for audio)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", type=Path, metavar="OUT",
                       help="output path for a single input (its suffix is replaced per format)")
    where.add_argument("--out-dir", type=Path, metavar="DIR",
                       help="write outputs here (default: next to each input)")
    ap.add_argument("--format", type=parse_formats, default=["midi"], metavar="LIST",
                    help="comma list of midi, musicxml, pdf, json (default: midi)")
    ap.add_argument("--checkpoint", type=Path, metavar="PATH",
                    help="weights file or training run folder (default: the bundled model)")
    ap.add_argument("--decoder", choices=DECODER_CHOICES, default=None,
                    help="tokens: seq2seq decoder with pedal; frames: the encoder's frame head "
                         "(default: what the model recommends)")
    ap.add_argument("--batch-size", type=_positive_int, default=8, metavar="N",
                    help="segments per model call (default 8)")
    ap.add_argument("--title", help="score title (MusicXML/PDF) and MIDI track name "
                    "(default: the input file's name)")
    ap.add_argument("--composer", help="score composer (MusicXML/PDF)")
    ap.add_argument("--tempo", type=parse_tempo, metavar="BPM",
                    help="quarter notes per minute for the score and the MIDI tempo map")
    ap.add_argument("--time-sig", type=parse_time_sig, metavar="N/D", help="e.g. 3/4 or 6/8")
    ap.add_argument("--engraver", default="auto",
                    choices=("auto", "verovio", "lilypond", "musescore"),
                    help="PDF engraver (default: verovio)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    ap.add_argument("--debug", action="store_true", help="tracebacks for unexpected errors")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="harmonynet", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_transcribe_args(sub.add_parser("transcribe", help="audio -> MIDI / JSON / MusicXML / PDF",
                                       description="Transcribe piano recordings."))
    ev = sub.add_parser("evaluate", help="score transcriptions against aligned MIDI",
                        description="mir_eval note and frame scores per piece and mean.")
    ev.add_argument("--data", type=Path, required=True, metavar="DIR",
                    help="MAESTRO-layout folder (with maestro-v*.csv/json) or a folder of "
                         "audio files with same-stem .mid/.midi")
    ev.add_argument("--split", default=None, help="MAESTRO split (default: test)")
    ev.add_argument("--checkpoint", type=Path, metavar="PATH",
                    help="weights file or training run folder (default: the bundled model)")
    ev.add_argument("--decoder", type=_decoders, default=None, metavar="LIST",
                    help="tokens, frames or tokens,frames (one encoder pass for both; "
                         "default: what the model recommends)")
    ev.add_argument("--estimates", type=Path, metavar="DIR",
                    help="score existing MIDI transcriptions (DIR/<piece>.mid) instead of "
                         "running the model")
    ev.add_argument("--estimate-suffix", default="", metavar="S",
                    help="estimate file names end in S before .mid (basic-pitch: _basic_pitch)")
    ev.add_argument("--batch-size", type=_positive_int, default=8, metavar="N")
    ev.add_argument("--limit", type=_positive_int, metavar="N", help="first N pieces only")
    ev.add_argument("--json", type=Path, metavar="OUT", help="write all scores as JSON")
    ev.add_argument("--plot", type=Path, metavar="OUT.png",
                    help="piano roll of estimate vs reference for one piece")
    ev.add_argument("--plot-piece", metavar="NAME",
                    help="the piece to plot (a substring of its name; default: the first)")
    ev.add_argument("--plot-seconds", type=float, default=None, metavar="S",
                    help="seconds shown from the start (default 30)")
    ev.add_argument("--no-progress", action="store_true")
    ev.add_argument("--debug", action="store_true")
    sub.add_parser("check", help="report dependencies, engravers, ffmpeg and JAX devices")
    from harmonynet_jax.service.server import add_serve_args

    add_serve_args(sub.add_parser(
        "serve", help="the web service: HTTP API + workers (docs/service.md)",
        description="Upload audio over HTTP, get MIDI / MusicXML / PDF / JSON back. Settings "
                    "also come from HARMONYNET_SERVICE_*, REDIS_URL and HARMONYNET_S3_*."))
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _dispatch(args)


def transcribe_main(argv: Sequence[str] | None = None) -> int:
    """`transcribe.py` at the repository root: the transcribe command on its own."""
    ap = argparse.ArgumentParser(prog="transcribe.py", description="Transcribe piano recordings "
                                 "(audio -> MIDI / JSON / MusicXML / PDF).")
    add_transcribe_args(ap)
    args = ap.parse_args(argv)
    args.command = "transcribe"
    return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    logging.getLogger("absl").setLevel(logging.CRITICAL)  # orbax chatter on run folders
    try:
        if args.command == "serve":
            from harmonynet_jax.service.server import run

            return run(args)
        if args.command == "check":
            from harmonynet_jax.check_command import run_check

            return run_check()
        _enable_compile_cache()
        if args.command == "transcribe":
            return run_transcribe(args)
        from harmonynet_jax.evaluate_command import run_evaluate

        return run_evaluate(args)
    except UsageError as err:
        say(f"error: {err}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        say("interrupted")
        return 130


def _enable_compile_cache() -> None:
    from harmonynet_jax.cache import enable_jax_compile_cache

    enable_jax_compile_cache()


# --- transcribe -------------------------------------------------------------------------------


def expand_inputs(inputs: Sequence[Path]) -> list[tuple[Path, Path]]:
    """(file, name relative to its output folder) for each input; folders give their audio
    files (recursively, sorted), files are taken as given, missing paths too (reported later)."""
    out: list[tuple[Path, Path]] = []
    for path in inputs:
        if path.is_dir():
            found = [p for p in sorted(path.rglob("*"))
                     if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]
            if not found:
                say(f"warning: no audio files in folder {path}")
            out += [(p, p.relative_to(path)) for p in found]
        else:
            out.append((path, Path(path.name)))
    return out


def plan_outputs(items: list[tuple[Path, Path]], formats: list[str], output: Path | None,
                 out_dir: Path | None) -> list[dict[str, Path]]:
    """Output path per format for each input; two inputs may not write the same file."""
    if output is not None and len(items) != 1:
        raise UsageError(f"-o/--output takes one input, got {len(items)}; use --out-dir")
    plans = []
    for path, rel in items:
        if output is not None:
            base = output.with_suffix("") if output.suffix.lower() in (
                *FORMATS.values(), ".midi", ".xml") else output
            plan = {f: (output if len(formats) == 1 else base.with_suffix(FORMATS[f]))
                    for f in formats}
        else:
            folder = out_dir / rel.parent if out_dir is not None else path.parent
            plan = {f: folder / (rel.stem + FORMATS[f]) for f in formats}
        plans.append(plan)
    seen: dict[Path, Path] = {}
    for (path, _), plan in zip(items, plans, strict=True):
        for target in plan.values():
            key = target.resolve()
            if key in seen and seen[key] != path:
                raise UsageError(f"{seen[key]} and {path} would both write {target}; "
                                 "use --out-dir or rename one")
            seen[key] = path
    return plans


def run_transcribe(args: argparse.Namespace) -> int:
    items = expand_inputs(args.inputs)
    if not items:
        raise UsageError("no audio files to transcribe")
    plans = plan_outputs(items, args.format, args.output, args.out_dir)

    from harmonynet_jax.config import InferenceConfig
    from harmonynet_jax.inference import (
        AudioInputError,
        ModelUnavailable,
        load_model,
        load_recording,
        run_model,
        tuned_config,
    )
    from harmonynet_jax.tokens import VOCAB
    from harmonynet_jax.transcription import Transcription

    cfg = InferenceConfig()
    model = origin = None
    failures: list[tuple[Path, str]] = []
    done = 0
    for (path, _), plan in zip(items, plans, strict=True):
        start = time.perf_counter()
        try:
            audio = load_recording(path, cfg)
            if model is None:
                model, origin = load_model(args.checkpoint, cfg)
                cfg = tuned_config(origin, cfg)
                args.decoder = args.decoder or cfg.decoder
            label = None if args.no_progress else path.name
            notes, pedals = run_model(model, audio, (args.decoder,), batch_size=args.batch_size,
                                      cfg=cfg, progress=label)[args.decoder]
        except ModelUnavailable as err:
            say(f"error: {err}")
            return EXIT_MODEL
        except (FileNotFoundError, AudioInputError) as err:
            failures.append((path, str(err)))
            say(f"error: {err}")
            continue
        except Exception as err:  # keep the batch going; the message names the file
            failures.append((path, f"{type(err).__name__}: {err}"))
            say(f"{path}: failed: {type(err).__name__}: {err}")
            if args.debug:
                traceback.print_exc()
            continue
        result = Transcription(notes, pedals, len(audio) / VOCAB.sample_rate, args.decoder,
                               origin or "", str(path))
        if not len(audio):
            say(f"{path}: no audio in the file; writing empty outputs")
        written, errors = write_outputs(result, plan, args, cfg.midi_tempo_bpm,
                                        cfg.midi_ticks_per_beat)
        for fmt, message in errors:
            failures.append((path, f"{fmt}: {message}"))
            say(f"{path}: {fmt} not written: {message}")
        if written:
            done += 1
            print(f"{path} -> {', '.join(str(p) for p in written)} ({len(result.notes)} notes, "
                  f"{result.duration:.1f} s audio in {time.perf_counter() - start:.1f} s)",
                  flush=True)
    if len(items) > 1 or failures:
        summary = f"transcribed {done} of {len(items)} file(s)"
        if failures:
            summary += "; failed: " + ", ".join(dict.fromkeys(str(p) for p, _ in failures))
        say(summary)
    return EXIT_FAILED if failures else EXIT_OK


def write_outputs(result, plan: dict[str, Path], args: argparse.Namespace, default_tempo: float,
                  ticks_per_beat: int) -> tuple[list[Path], list[tuple[str, str]]]:
    """Writes each requested format (`Transcription.write`, shared with the web service)."""
    return result.write(plan, title=args.title, composer=args.composer, tempo=args.tempo,
                        time_signature=args.time_sig, engraver=args.engraver,
                        ticks_per_beat=ticks_per_beat, default_tempo=default_tempo)

if __name__ == "__main__":
    sys.exit(main())
