"""The `harmonynet` command: `transcribe` (audio -> MIDI / JSON / MusicXML / PDF), `evaluate`
(mir_eval scores against aligned MIDI) and `check` (dependencies, engravers, ffmpeg, JAX).

Errors the user can act on are one line on stderr, never a traceback (`--debug` shows it), and
a batch keeps going past a bad file. Exit codes: 0 all done; 1 some inputs or outputs failed;
2 usage error; 3 the model could not be loaded (none bundled yet, or a bad checkpoint).
Heavy imports (JAX, the model) happen after argument parsing, so mistakes are reported fast.
"""

from __future__ import annotations

import argparse
import logging
import os
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


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _formats(text: str) -> list[str]:
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


def _time_sig(text: str) -> str:
    from harmonynet_jax.transcription import parse_time_signature

    try:
        parse_time_signature(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _tempo(text: str) -> float:
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
    ap.add_argument("--format", type=_formats, default=["midi"], metavar="LIST",
                    help="comma list of midi, musicxml, pdf, json (default: midi)")
    ap.add_argument("--checkpoint", type=Path, metavar="PATH",
                    help="weights file or training run folder (default: the bundled model)")
    ap.add_argument("--decoder", choices=DECODER_CHOICES, default=None,
                    help="tokens: seq2seq decoder with pedal; frames: the encoder's frame head "
                         "(default: what the model recommends)")
    ap.add_argument("--batch-size", type=_positive_int, default=8, metavar="N",
                    help="segments per model call (default 8)")
    ap.add_argument("--title", help="score title (MusicXML/PDF) and MIDI track name")
    ap.add_argument("--composer", help="score composer (MusicXML/PDF)")
    ap.add_argument("--tempo", type=_tempo, metavar="BPM",
                    help="quarter notes per minute for the score and the MIDI tempo map")
    ap.add_argument("--time-sig", type=_time_sig, metavar="N/D", help="e.g. 3/4 or 6/8")
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
        if args.command == "check":
            return run_check()
        _enable_compile_cache()
        if args.command == "transcribe":
            return run_transcribe(args)
        return run_evaluate(args)
    except UsageError as err:
        _say(f"error: {err}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("interrupted")
        return 130


def _enable_compile_cache() -> None:
    """Compiled model functions persist between runs ($HARMONYNET_JAX_CACHE; 'off' disables),
    so a second `transcribe` skips most of the JIT time."""
    where = os.environ.get("HARMONYNET_JAX_CACHE")
    if where == "off":
        return
    if not where:
        from harmonynet_jax.cache import cache_dir

        where = str(cache_dir("jax"))
    import contextlib

    import jax

    with contextlib.suppress(Exception):  # a read-only home must not stop transcription
        jax.config.update("jax_compilation_cache_dir", where)


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
                _say(f"warning: no audio files in folder {path}")
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
    from harmonynet_jax.transcription import ScoreOutputError, Transcription

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
            _say(f"error: {err}")
            return EXIT_MODEL
        except (FileNotFoundError, AudioInputError) as err:
            failures.append((path, str(err)))
            _say(f"error: {err}")
            continue
        except Exception as err:  # keep the batch going; the message names the file
            failures.append((path, f"{type(err).__name__}: {err}"))
            _say(f"{path}: failed: {type(err).__name__}: {err}")
            if args.debug:
                traceback.print_exc()
            continue
        result = Transcription(notes, pedals, len(audio) / VOCAB.sample_rate, args.decoder,
                               origin or "", str(path))
        if not len(audio):
            _say(f"{path}: no audio in the file; writing empty outputs")
        written, errors = write_outputs(result, plan, args, cfg.midi_tempo_bpm,
                                        cfg.midi_ticks_per_beat, ScoreOutputError)
        for fmt, message in errors:
            failures.append((path, f"{fmt}: {message}"))
            _say(f"{path}: {fmt} not written: {message}")
        if written:
            done += 1
            print(f"{path} -> {', '.join(str(p) for p in written)} ({len(result.notes)} notes, "
                  f"{result.duration:.1f} s audio in {time.perf_counter() - start:.1f} s)",
                  flush=True)
    if len(items) > 1 or failures:
        summary = f"transcribed {done} of {len(items)} file(s)"
        if failures:
            summary += "; failed: " + ", ".join(dict.fromkeys(str(p) for p, _ in failures))
        _say(summary)
    return EXIT_FAILED if failures else EXIT_OK


def write_outputs(result, plan: dict[str, Path], args: argparse.Namespace, default_tempo: float,
                  ticks_per_beat: int, score_error: type[Exception]
                  ) -> tuple[list[Path], list[tuple[str, str]]]:
    """Writes each requested format; MIDI/JSON first, a score failure costs only its formats."""
    written: list[Path] = []
    errors: list[tuple[str, str]] = []
    if "midi" in plan:
        try:
            written.append(result.to_midi(plan["midi"], title=args.title, tempo=args.tempo,
                                          time_signature=args.time_sig,
                                          ticks_per_beat=ticks_per_beat,
                                          default_tempo=default_tempo))
        except (OSError, ValueError) as err:
            errors.append(("midi", str(err)))
    if "json" in plan:
        try:
            written.append(result.to_json(plan["json"]))
        except OSError as err:
            errors.append(("json", str(err)))
    score_formats = [f for f in ("musicxml", "pdf") if f in plan]
    if score_formats:
        kw = {"title": args.title, "composer": args.composer, "tempo": args.tempo,
              "time_signature": args.time_sig, "engraver": args.engraver}
        try:
            if "musicxml" in plan:
                result.to_score(plan["musicxml"], plan.get("pdf"), **kw)
            else:
                result.to_pdf(plan["pdf"], **kw)
            written += [plan[f] for f in score_formats]
        except (score_error, OSError) as err:
            errors += [(f, str(err)) for f in score_formats]
    return written, errors


# --- evaluate ---------------------------------------------------------------------------------


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
            _say(f"{pair.name}: failed: {err}")
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
        _say(f"failed: {len(failures)} of {len(pairs)} piece(s): "
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
        _say(f"error: {err}")
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


# --- check ------------------------------------------------------------------------------------


def _first_line(cmd: list[str]) -> str:
    import subprocess

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}  # MuseScore without a display
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"not runnable ({type(err).__name__})"
    text = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return text[0].strip() if text else f"exit status {done.returncode}"


def _declared_dependencies() -> tuple[list[str], dict[str, list[str]]]:
    """(required, {extra: names}) distribution names, from the repository's pyproject.toml
    when running from a checkout (it may be newer than the install), else the metadata."""
    import re
    import tomllib
    from importlib import metadata

    def name(req: str) -> str:
        return re.match(r"[A-Za-z0-9_.\-]+", req).group(0)

    def applies(req: str, extra: str) -> bool:
        """False for requirements whose environment marker excludes this machine."""
        try:
            from packaging.requirements import Requirement
        except ImportError:
            return True
        marker = Requirement(req).marker
        return marker is None or marker.evaluate({"extra": extra})

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text())["project"]
        extras = {extra: list(dict.fromkeys(name(r) for r in reqs if applies(r, extra)))
                  for extra, reqs in project.get("optional-dependencies", {}).items()}
        return [name(r) for r in project["dependencies"] if applies(r, "")], extras
    reqs = metadata.requires("harmonynet-jax") or []
    extras: dict[str, list[str]] = {}
    for r in reqs:
        found = re.search(r"extra\s*==\s*['\"]([^'\"]+)", r)
        if found:
            extras.setdefault(found.group(1), []).append(name(r))
    return [name(r) for r in reqs if "extra ==" not in r], extras


def run_check() -> int:
    """Prints every dependency with its version; 1 when something required is missing."""
    import platform
    import shutil
    from importlib import metadata

    problems: list[str] = []

    def row(label: str, value: str) -> None:
        print(f"  {label:<22} {value}")

    print("HarmonyNet-JAX")
    row("python", f"{platform.python_version()} ({sys.executable})")
    try:
        row("harmonynet-jax", metadata.version("harmonynet-jax"))
    except metadata.PackageNotFoundError:
        row("harmonynet-jax", "not installed as a distribution (running from source)")
    try:
        from harmonynet_jax.tokens import VOCAB

        row("Rust loader", f"ok (vocabulary {VOCAB.size} tokens)")
    except Exception as err:
        problems.append("Rust loader")
        row("Rust loader", f"BROKEN: {err} (build it: pip install -e .)")
    required, extras = _declared_dependencies()
    groups = [("dependencies", required, True)]
    groups += [(f"optional [{extra}]", names, False) for extra, names in extras.items()]
    for title, names, needed in groups:
        print(title)
        for dist in names:
            try:
                row(dist, metadata.version(dist))
            except metadata.PackageNotFoundError:
                row(dist, "MISSING" if needed else "not installed")
                if needed:
                    problems.append(dist)
    print("ffmpeg")
    try:
        from harmonynet_jax.ffmpeg import ffmpeg_path

        path = ffmpeg_path()
        row("path", path)
        row("version", _first_line([path, "-version"]))
    except Exception as err:
        problems.append("ffmpeg")
        row("path", f"MISSING: {err}")
    print("engravers (PDF)")
    try:
        import verovio

        row("verovio", f"{verovio.toolkit().getVersion()} (Python, the default)")
    except Exception as err:
        row("verovio", f"unavailable: {err}")
    for dist in ("cairosvg", "pypdf"):  # verovio's SVG pages -> one PDF
        try:
            row(f"  {dist}", metadata.version(dist))
        except metadata.PackageNotFoundError:
            row(f"  {dist}", "MISSING (verovio PDFs need it)")
    lilypond = shutil.which("lilypond")
    row("lilypond", f"{_first_line([lilypond, '--version'])} ({lilypond})" if lilypond
        else "not found")
    xml2ly = shutil.which("musicxml2ly")
    row("musicxml2ly", xml2ly or "not found (LilyPond needs it for MusicXML)")
    musescore = next((shutil.which(b) for b in ("mscore", "musescore", "mscore4portable",
                                                 "musescore4", "mscore3") if shutil.which(b)),
                     None)
    row("musescore", f"{_first_line([musescore, '--version'])} ({musescore})" if musescore
        else "not found")
    print("JAX")
    try:
        import jax

        row("backend", jax.default_backend())
        row("devices", ", ".join(str(d) for d in jax.devices()))
    except Exception as err:
        problems.append("jax")
        row("backend", f"BROKEN: {err}")
    print("model")
    from harmonynet_jax.inference import bundled_model_path

    bundled = bundled_model_path()
    if bundled.is_file():
        from harmonynet_jax.weights import read_header

        try:
            info = read_header(bundled).get("info", {})
            row("bundled", f"{bundled} {info}" if info else str(bundled))
        except Exception as err:
            row("bundled", f"{bundled} unreadable: {err}")
    else:
        row("bundled", f"not trained yet ({bundled} missing): transcribe needs --checkpoint")
    if problems:
        print(f"missing or broken: {', '.join(problems)}")
        return EXIT_FAILED
    print("all required dependencies present")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
