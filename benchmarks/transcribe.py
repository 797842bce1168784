"""Transcription speed and memory: HarmonyNet against basic-pitch 0.4.0 on the same files.

    python benchmarks/transcribe.py [FILES...] [--checkpoint PATH] [--decoder tokens,frames]

Every run is one process per file, model load included (as in shared/realpiano/BASELINES.md):
wall time, real-time factor (audio s / wall s) and peak RSS (measured by /usr/bin/time).
HarmonyNet also reports its own in-process time (decode + model + joining, without imports and
model load), and runs with a warm JAX compile cache after one unmeasured warm-up.

The model is the bundled one; until it exists, `--checkpoint`, or else a random-weight small
preset model (speed only: its scores are meaningless, and the token decoder runs to its length
limit on every segment, the slowest case). basic-pitch is NOT a project dependency: it lives
in its own venv (default ~/.cache/harmonynet/bench-venv) with the ONNX runtime, installed
without TensorFlow (which its Linux/Python 3.11 metadata would otherwise pull in).
Each system's MIDI is scored against the reference with harmonynet_jax.evaluate.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REALPIANO = Path(__file__).resolve().parents[2] / "shared" / "realpiano"
DEFAULT_FILES = ("Chopin_Op028-01_003_20100611-SMD.mp3", "Chopin_Op028-03_003_20100611-SMD.mp3",
                 "MAPS_MUS-deb_clai_ENSTDkCl_excerpt.wav")
TIME = "/usr/bin/time"
BASIC_PITCH = "basic-pitch==0.4.0"
# basic-pitch 0.4.0's own requirements, minus TensorFlow, plus its ONNX backend.
BASIC_PITCH_DEPS = ("librosa>=0.8.0", "mir-eval>=0.6", "numpy<2", "pretty-midi>=0.2.9",
                    "resampy>=0.2.2,<0.4.3", "scikit-learn", "scipy>=1.4.1", "typing-extensions",
                    "onnxruntime")


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Runs `cmd` under /usr/bin/time: wall seconds, peak RSS (MB), exit status, output.

    Not os.wait4 from here: a child's ru_maxrss starts at this (JAX-importing) process's RSS,
    since exec records the high-water mark of the address space it replaces; `time` is small.
    """
    if not Path(TIME).is_file():
        raise SystemExit(f"{TIME} is needed for peak RSS (Debian package `time`)")
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        start = time.perf_counter()
        done = subprocess.run([TIME, "-f", "%M", "-o", str(rss_file), *cmd], capture_output=True,
                              text=True, env=env)
        wall = time.perf_counter() - start
        peak_kb = float(rss_file.read_text().strip().splitlines()[-1])
    return {"wall_s": wall, "peak_mb": peak_kb / 1024, "code": done.returncode,
            "stdout": done.stdout, "stderr": done.stderr}


def ensure_basic_pitch(venv: Path) -> tuple[Path | None, str]:
    """(path of the basic-pitch script, note); None and the reason when it cannot be set up."""
    script, python = venv / "bin" / "basic-pitch", venv / "bin" / "python"
    if script.is_file():
        probe = subprocess.run([python, "-c", "import importlib.metadata as m, basic_pitch as b;"
                                "print(m.version('basic-pitch'), b.ICASSP_2022_MODEL_PATH)"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.startswith("0.4.0 "):
            return script, f"basic-pitch {probe.stdout.strip()}"
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"],
             [str(python), "-m", "pip", "install", "-q", "--no-deps", BASIC_PITCH],
             [str(python), "-m", "pip", "install", "-q", *BASIC_PITCH_DEPS]]
    for step in steps:
        print("setting up basic-pitch:", " ".join(step), flush=True)
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return None, f"`{' '.join(step)}` failed: {' | '.join(tail)}"
    return ensure_basic_pitch(venv) if script.is_file() else (None, "no basic-pitch script")


def random_small_checkpoint(folder: Path) -> Path:
    import jax

    from harmonynet_jax.config import ModelConfig
    from harmonynet_jax.model import HarmonyNet
    from harmonynet_jax.weights import save_weights

    model = HarmonyNet(ModelConfig.preset("small"), key=jax.random.key(0))
    # float32 on disk: weights.load_weights cannot read float16 files yet (compute is float32
    # either way, so speed is the same).
    return save_weights(folder / "random-small.eqx", model, dtype="float32",
                        info={"note": "random weights, benchmark only"})


def duration(path: Path) -> float:
    from harmonynet_jax.data import load_audio

    return len(load_audio(path)) / 16000


def scores(reference: Path, estimate: Path) -> dict[str, float]:
    from harmonynet_jax import evaluate as ev

    ref, est = ev.read_reference(reference), ev.read_reference(estimate)
    return ev.piece_scores(*ref, *est)


def reference_of(audio: Path) -> Path | None:
    return next((p for p in (audio.with_suffix(".mid"), audio.with_suffix(".midi"))
                 if p.is_file()), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--decoder", default="tokens,frames")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache/harmonynet/bench-venv")
    ap.add_argument("--skip-basic-pitch", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    files = args.files or [REALPIANO / f for f in DEFAULT_FILES]
    work = Path(tempfile.mkdtemp(prefix="harmonynet-bench-"))
    env = {**os.environ, "HARMONYNET_JAX_CACHE": str(work / "jax-cache")}

    from harmonynet_jax.inference import bundled_model_path

    if args.checkpoint:
        checkpoint, label = args.checkpoint, f"HarmonyNet ({args.checkpoint})"
    elif bundled_model_path().is_file():
        checkpoint, label = bundled_model_path(), "HarmonyNet (bundled model)"
    else:
        checkpoint = random_small_checkpoint(work)
        label = "HarmonyNet small preset, RANDOM WEIGHTS (no trained model yet; speed only)"
    systems: list[tuple[str, Callable]] = []
    for decoder in args.decoder.split(","):
        def ours(audio: Path, out: Path, decoder: str = decoder) -> tuple[dict, Path]:
            cmd = [sys.executable, "-m", "harmonynet_jax.cli", "transcribe", str(audio),
                   "--checkpoint", str(checkpoint), "--decoder", decoder, "--batch-size",
                   str(args.batch_size), "--out-dir", str(out), "--no-progress"]
            return measure(cmd, env), out / (audio.stem + ".mid")
        systems.append((f"{label}, {decoder} decoder", ours))
    notes = [f"model: {label}; checkpoint {checkpoint}"]
    if not args.skip_basic_pitch:
        script, note = ensure_basic_pitch(args.venv)
        notes.append(note)
        if script is not None:
            def basic_pitch(audio: Path, out: Path) -> tuple[dict, Path]:
                out.mkdir(parents=True, exist_ok=True)
                return (measure([str(script), str(out), str(audio)]),
                        out / f"{audio.stem}_basic_pitch.mid")
            systems.append(("basic-pitch 0.4.0 (ONNX runtime)", basic_pitch))
    print("\n".join(notes), flush=True)

    rows = []
    for name, run in systems:
        run(files[0], work / "warmup" / str(len(rows)))  # JIT caches / numba, not measured
        for audio in files:
            seconds = duration(audio)
            result, midi = run(audio, work / "out" / f"{len(rows)}")
            row = {"system": name, "file": audio.name, "audio_s": seconds,
                   "wall_s": result["wall_s"], "rtf": seconds / result["wall_s"],
                   "peak_mb": result["peak_mb"], "code": result["code"]}
            inner = re.search(r"audio in ([0-9.]+) s\)", result["stdout"])
            if inner:
                row["inprocess_s"] = float(inner.group(1))
                row["inprocess_rtf"] = seconds / max(row["inprocess_s"], 1e-9)
            ref = reference_of(audio)
            if result["code"] == 0 and ref is not None and midi.is_file():
                row.update({k: v for k, v in scores(ref, midi).items()
                            if k in ("onset_f1", "onset_offset_f1", "frame_f1", "est_notes")})
            elif result["code"]:
                row["error"] = result["stderr"].strip().splitlines()[-1:]
            rows.append(row)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                              for k, v in row.items()}), flush=True)

    print("\n| system | file | audio s | wall s | RTF | in-process RTF | peak MB | On F1 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        inner = f"{r['inprocess_rtf']:.2f}" if "inprocess_rtf" in r else "-"
        f1 = f"{r['onset_f1']:.3f}" if "onset_f1" in r else "-"
        print(f"| {r['system']} | {r['file']} | {r['audio_s']:.1f} | {r['wall_s']:.2f} | "
              f"{r['rtf']:.2f} | {inner} | {r['peak_mb']:.0f} | {f1} |")
    for name, _ in systems:
        mine = [r for r in rows if r["system"] == name]
        total_audio, total_wall = sum(r["audio_s"] for r in mine), sum(r["wall_s"] for r in mine)
        print(f"{name}: {total_audio:.1f} s audio in {total_wall:.1f} s wall, RTF "
              f"{total_audio / total_wall:.2f}, peak {max(r['peak_mb'] for r in mine):.0f} MB")
    if args.json:
        args.json.write_text(json.dumps({"notes": notes, "rows": rows}, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
