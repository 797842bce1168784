"""Transcription accuracy, speed and memory: HarmonyNet beside basic-pitch 0.4.0 and transkun
2.0.1 on the same files, in one run.

    python benchmarks/transcribe.py [FILES... | --all-realpiano] [--checkpoint PATH]
        [--decoder tokens,frames] [--peers basic-pitch,transkun] [--json OUT]

Every run is one process per file, model load included (as in shared/realpiano/BASELINES.md):
wall time, real-time factor (audio s / wall s) and peak RSS (measured by /usr/bin/time).
HarmonyNet also reports its own in-process time (decode + model + joining, without imports and
model load). Each system first runs unmeasured: HarmonyNet once per compiled batch shape (so
its on-disk JAX compile cache is warm), a peer once on the shortest file (OS caches, numba).

The model is the bundled one (with the decoder its file recommends) unless `--checkpoint`;
without either, a random-weight small preset model (speed only: its scores are meaningless).
The peers are not project dependencies: each runs from its own venv (benchmarks/peers.py).
Each system's MIDI is scored against the reference with harmonynet_jax.evaluate, both sides
extended by their own sustain pedal (the BASELINES.md rules); the summary is the mean over
files of each score, RTF is total audio over total wall time, peak is the largest of any file.
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

from peers import PEERS, VENV_ROOT  # benchmarks/, the script's folder, is on sys.path

REALPIANO = Path(__file__).resolve().parents[2] / "shared" / "realpiano"
DEFAULT_FILES = ("Chopin_Op028-01_003_20100611-SMD.mp3", "Chopin_Op028-03_003_20100611-SMD.mp3",
                 "MAPS_MUS-deb_clai_ENSTDkCl_excerpt.wav")
TIME = "/usr/bin/time"
SCORES = (("onset_p", "On P"), ("onset_r", "On R"), ("onset_f1", "On F1"),
          ("onset_offset_f1", "On+Off F1"), ("onset_offset_velocity_f1", "On+Off+Vel F1"),
          ("frame_f1", "Frame F1"))


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


def warmup_files(checkpoint: Path, seconds: dict[Path, float], batch_size: int) -> list[Path]:
    """The shortest file of each batch shape HarmonyNet compiles for these files."""
    from harmonynet_jax.inference import chunk_rows, segment_count
    from harmonynet_jax.weights import read_header

    samples = read_header(checkpoint)["model_config"]["segment_samples"]
    shapes: dict[int, Path] = {}
    for audio in sorted(seconds, key=seconds.get):
        count = segment_count(round(seconds[audio] * 16000), samples)
        shapes.setdefault(chunk_rows(count, batch_size), audio)
    return list(shapes.values())


def summary(name: str, rows: list[dict]) -> dict:
    """One system's totals over its files: mean scores (over the files it scored), total
    audio and wall time, RTF = audio / wall, largest peak RSS."""
    from harmonynet_jax import evaluate as ev

    audio, wall = sum(r["audio_s"] for r in rows), sum(r["wall_s"] for r in rows)
    scored = [{k: r[k] for k, _ in SCORES} | {"ref_notes": r["ref_notes"],
                                               "est_notes": r["est_notes"]}
              for r in rows if "onset_f1" in r]
    out = {"system": name, "files": len(rows), "scored": len(scored), "audio_s": audio,
           "wall_s": wall, "rtf": audio / wall, "peak_mb": max(r["peak_mb"] for r in rows),
           **ev.mean_scores(scored)}
    inner = [r["inprocess_s"] for r in rows if "inprocess_s" in r]
    if len(inner) == len(rows):
        out["inprocess_rtf"] = audio / max(sum(inner), 1e-9)
    return out


def fmt(row: dict, key: str, spec: str = ".3f") -> str:
    return format(row[key], spec) if key in row else "-"


def print_tables(rows: list[dict], totals: list[dict], ours: list[str]) -> None:
    heads = [t for _, t in SCORES]
    print("\n| system | file | audio s | wall s | RTF | peak MB | ref/est | "
          + " | ".join(heads) + " |")
    print("|---" * (7 + len(heads)) + "|")
    for r in rows:
        counts = f"{r['ref_notes']:.0f}/{r['est_notes']:.0f}" if "ref_notes" in r else "-"
        print(f"| {r['system']} | {r['file']} | {r['audio_s']:.1f} | {r['wall_s']:.2f} | "
              f"{r['rtf']:.2f} | {r['peak_mb']:.0f} | {counts} | "
              + " | ".join(fmt(r, k) for k, _ in SCORES) + " |")

    print("\n| system (mean of files) | ref/est | " + " | ".join(heads)
          + " | audio s | wall s | RTF | in-process RTF | peak MB |")
    print("|---" * (7 + len(heads)) + "|")
    for t in totals:
        counts = f"{t['ref_notes']:.0f}/{t['est_notes']:.0f}" if "ref_notes" in t else "-"
        scored = "" if t["scored"] == t["files"] else f" ({t['scored']}/{t['files']} scored)"
        print(f"| {t['system']}{scored} | {counts} | "
              + " | ".join(fmt(t, k) for k, _ in SCORES)
              + f" | {t['audio_s']:.1f} | {t['wall_s']:.1f} | {t['rtf']:.2f} | "
              f"{fmt(t, 'inprocess_rtf', '.2f')} | {t['peak_mb']:.0f} |")

    mine = [t for t in totals if t["system"] in ours]
    peers = [t for t in totals if t["system"] not in ours]
    if mine and peers:
        print("\n| ours vs peer | RTF ours / peer | peak MB ours / peer | On F1 ours / peer | "
              "On F1 ours - peer |")
        print("|---|---|---|---|---|")
        for m in mine:
            for p in peers:
                f1 = (f"{m['onset_f1'] / p['onset_f1']:.3f} | "
                      f"{m['onset_f1'] - p['onset_f1']:+.3f}"
                      if "onset_f1" in m and p.get("onset_f1") else "- | -")
                print(f"| {m['system']} vs {p['system']} | {m['rtf'] / p['rtf']:.2f} | "
                      f"{m['peak_mb'] / p['peak_mb']:.2f} | {f1} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--all-realpiano", action="store_true",
                    help=f"every recording with a reference MIDI in {REALPIANO}")
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--decoder", default=None,
                    help="comma-separated HarmonyNet decoders (default: the model's own)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--peers", default=",".join(PEERS),
                    help=f"comma-separated, among {', '.join(PEERS)} ('' for none)")
    ap.add_argument("--venv-root", type=Path, default=VENV_ROOT,
                    help="folder of the peers' venvs (created on first use)")
    ap.add_argument("--json", type=Path, help="write every row and the summary here")
    args = ap.parse_args()
    peers = [PEERS[k] for k in args.peers.split(",") if k]  # KeyError names a wrong peer
    if args.all_realpiano:
        from harmonynet_jax.evaluate import folder_pairs

        files = [*args.files, *(p.audio for p in folder_pairs(REALPIANO))]
    else:
        files = args.files or [REALPIANO / f for f in DEFAULT_FILES]
    work = Path(tempfile.mkdtemp(prefix="harmonynet-bench-"))
    env = {**os.environ, "HARMONYNET_JAX_CACHE": str(work / "jax-cache")}

    from harmonynet_jax.inference import InferenceConfig, bundled_model_path, tuned_config

    if args.checkpoint:
        checkpoint, label = args.checkpoint, f"HarmonyNet ({args.checkpoint})"
    elif bundled_model_path().is_file():
        checkpoint, label = bundled_model_path(), "HarmonyNet (bundled model)"
    else:
        checkpoint = random_small_checkpoint(work)
        label = "HarmonyNet small preset, RANDOM WEIGHTS (no trained model yet; speed only)"
    decoders = (args.decoder or tuned_config(checkpoint, InferenceConfig()).decoder).split(",")
    seconds = {audio: duration(audio) for audio in files}
    ours_warmup = warmup_files(checkpoint, seconds, args.batch_size)
    shortest = [min(files, key=seconds.get)]

    systems: list[tuple[str, Callable, list[Path]]] = []
    for decoder in decoders:
        def ours(audio: Path, out: Path, decoder: str = decoder) -> tuple[dict, Path]:
            cmd = [sys.executable, "-m", "harmonynet_jax.cli", "transcribe", str(audio),
                   "--checkpoint", str(checkpoint), "--decoder", decoder, "--batch-size",
                   str(args.batch_size), "--out-dir", str(out), "--no-progress"]
            return measure(cmd, env), out / (audio.stem + ".mid")
        systems.append((f"{label}, {decoder} decoder", ours, ours_warmup))
    ours_names = [name for name, _, _ in systems]
    notes = [f"model: {label}; checkpoint {checkpoint}; decoders {', '.join(decoders)}"]
    for peer in peers:
        script, note = peer.ensure(args.venv_root)
        notes.append(note)
        if script is None:
            continue

        def run_peer(audio: Path, out: Path, peer=peer, script=script) -> tuple[dict, Path]:
            cmd, midi = peer.command(script, audio, out)
            return measure(cmd, peer.env(script)), midi
        systems.append((peer.name, run_peer, shortest))
    print("\n".join(notes), flush=True)

    rows = []
    for name, run, warmups in systems:
        for i, audio in enumerate(warmups):  # compile cache, numba, OS caches: not measured
            run(audio, work / "warmup" / f"{len(rows)}-{i}")
        for audio in files:
            result, midi = run(audio, work / "out" / f"{len(rows)}")
            row = {"system": name, "file": audio.name, "audio_s": seconds[audio],
                   "wall_s": result["wall_s"], "rtf": seconds[audio] / result["wall_s"],
                   "peak_mb": result["peak_mb"], "code": result["code"]}
            inner = re.search(r"audio in ([0-9.]+) s\)", result["stdout"])
            if inner:
                row["inprocess_s"] = float(inner.group(1))
                row["inprocess_rtf"] = seconds[audio] / max(row["inprocess_s"], 1e-9)
            ref = reference_of(audio)
            if result["code"] == 0 and ref is not None and midi.is_file():
                row.update(scores(ref, midi))
            elif result["code"]:
                row["error"] = result["stderr"].strip().splitlines()[-1:]
            rows.append(row)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                              for k, v in row.items()}), flush=True)

    totals = [summary(name, [r for r in rows if r["system"] == name]) for name, _, _ in systems]
    print_tables(rows, totals, ours_names)
    if args.json:
        args.json.write_text(json.dumps({"notes": notes, "files": [str(f) for f in files],
                                         "summary": totals, "rows": rows}, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
