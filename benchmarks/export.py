"""Mobile export benchmark: file sizes of every exported variant, and the real-time factor of the
app's TFLite loops (token decoder: encode once per segment, greedy decode_step with the host
grammar; frame decoder: overlapping segments through encode + frame_probs, then Onsets & Frames)
against the JAX path on the same audio, on this machine's 2 cores.

    python benchmarks/export.py --preset small --seconds 6

With no --checkpoint the model has random weights (no trained model exists yet): sizes are
exact, but a random decoder emits a random number of tokens per segment, so the per-token time
is the figure that carries over to a trained model; RTF = processing time / audio time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# This file is itself named export.py: put the repository root, not benchmarks/, first on the
# path so `import export` finds the package.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from export import decode_loop, parity, pipeline, tflite  # noqa: E402
from export.contract import Contract, Decoding  # noqa: E402
from export.stablehlo import float32_model  # noqa: E402
from harmonynet_jax.config import ExportConfig, ModelConfig  # noqa: E402
from harmonynet_jax.decoding import greedy_decode  # noqa: E402
from harmonynet_jax.inference import segment_count  # noqa: E402
from harmonynet_jax.model import HarmonyNet  # noqa: E402
from harmonynet_jax.tokens import VOCAB  # noqa: E402
from harmonynet_jax.weights import load_weights  # noqa: E402


@eqx.filter_jit
def _jax_transcribe(
    model: HarmonyNet, audio: jax.Array, precompute_cross: bool, full: bool = False
) -> jax.Array:
    return greedy_decode(model, model.encode(audio), precompute_cross=precompute_cross,
                         stop_when_done=not full)


def time_jax(model: HarmonyNet, segs: np.ndarray, batch: int, precompute_cross: bool = True,
             full: bool = False):
    """Seconds and tokens of the JAX path over all segments, `batch` segments per call
    (full: every segment runs all max_decode_len steps, the worst case of dense music)."""
    model = float32_model(model)
    chunks = [segs[i : i + batch] for i in range(0, len(segs), batch)]
    run = lambda c: _jax_transcribe(model, jnp.asarray(c), precompute_cross, full)  # noqa: E731
    jax.block_until_ready(run(chunks[0]))
    t0 = time.perf_counter()
    tokens = [np.asarray(run(c)) for c in chunks]
    return time.perf_counter() - t0, int(sum((t != VOCAB.pad).sum() for t in tokens))


def time_tflite_full(path: Path, contract: Contract, segment: np.ndarray, threads: int) -> float:
    """Seconds of encode + all max_decode_len decode_step calls on one segment (worst case)."""
    model = tflite.TFLiteModel(path, contract, threads)
    model.encode(segment)
    t0 = time.perf_counter()
    memory = model.encode(segment)
    k = np.zeros(contract.cache_shape, np.float32)
    v = np.zeros(contract.cache_shape, np.float32)
    token = VOCAB.sos
    for i in range(contract.max_decode_len):
        logits, k, v = model.decode_step(token, memory, k, v, i)
        token = int(np.argmax(logits))
    return time.perf_counter() - t0


def time_tflite(path: Path, contract: Contract, segs: np.ndarray, threads: int):
    """(encode s, decode s, tokens, decode steps) of the app loop over all segments."""
    model = tflite.TFLiteModel(path, contract, threads)
    model.encode(segs[0])  # warm-up (XNNPACK packs weights on first use)
    enc = dec = 0.0
    tokens = steps = 0
    for seg in segs:
        t0 = time.perf_counter()
        memory = model.encode(seg)
        t1 = time.perf_counter()
        out = decode_loop.greedy_decode(model, memory)
        dec += time.perf_counter() - t1
        enc += t1 - t0
        used = int((out != VOCAB.pad).sum())
        tokens += used
        steps += used  # one decode_step per emitted token (the loop stops after EOS)
    return enc, dec, tokens, steps


def time_tflite_frames(path: Path, contract: Contract, audio: np.ndarray, threads: int,
                       decoding: Decoding) -> tuple[float, int, int]:
    """(seconds, segments, notes) of the app's frame-decoder loop over `audio`, notes
    included (encode + frame_probs per overlapping segment, then frames_to_notes)."""
    model = tflite.TFLiteModel(path, contract, threads)
    model.frame_probs(model.encode(np.zeros(contract.segment_samples, np.float32)))  # warm-up
    t0 = time.perf_counter()
    notes = decode_loop.frame_notes(model, audio, decoding)
    seconds = time.perf_counter() - t0
    count = segment_count(audio.size, contract.segment_samples, decoding.margin_samples)
    return seconds, count, len(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=["tiny", "small", "base"])
    parser.add_argument("--checkpoint", type=Path, default=None, help="trained weights")
    parser.add_argument("--seconds", type=float, default=6.0, help="audio per clip")
    parser.add_argument("--clips", type=int, default=1, help="fixture clips")
    parser.add_argument("--threads", default="2", help="TFLite threads, e.g. 2 or 1,2")
    parser.add_argument("--out", type=Path, default=None, help="keep the exported files here")
    args = parser.parse_args()

    if args.checkpoint:
        model, label = load_weights(args.checkpoint), str(args.checkpoint)
    else:
        model = HarmonyNet(ModelConfig.preset(args.preset), key=jax.random.key(0))
        label = f"preset {args.preset}, RANDOM weights"
    contract = Contract.from_config(model.config)
    out = args.out or Path(tempfile.mkdtemp(prefix="harmonynet_export_bench_"))
    decoding = pipeline.recommended_decoding(model, args.checkpoint)
    t0 = time.perf_counter()
    manifest = pipeline.export_model(model, out, ExportConfig(), log=lambda *_: None,
                                     decoding=decoding)
    export_s = time.perf_counter() - t0
    half = pipeline.export_model(
        model, out / "coreml_fp16", ExportConfig(tflite_variants=(), coreml_precision="float16",
                                                 saved_model=False), log=lambda *_: None)

    audio = np.concatenate([parity.load_clip(p, args.seconds)
                            for p in parity.fixture_clips(args.clips)])
    segs, _ = decode_loop.segments(audio, contract.segment_samples)
    audio_s = len(segs) * contract.segment_samples / VOCAB.sample_rate
    print(f"model: {label}; {len(segs)} segments of {contract.segment_samples} samples "
          f"({audio_s:.1f} s of fixture audio), export took "
          f"{export_s:.0f} s")

    print("\nsizes (MB)")
    for key, size in manifest["sizes_bytes"].items():
        if key != "saved_model":
            print(f"  {manifest['files'][key]:<28} {size / 1e6:8.2f}")
    for key, size in half["sizes_bytes"].items():
        if key.startswith("coreml"):
            print(f"  {half['files'][key] + ' (fp16)':<28} {size / 1e6:8.2f}")

    seg_s = contract.segment_samples / VOCAB.sample_rate
    print(f"\nRTF = time / audio time; 'full' decodes all {contract.max_decode_len} positions of "
          f"every segment (the worst case: dense music)")
    print("path                         encode ms/seg  decode ms/token  tokens/seg    RTF"
          "  RTF full")
    threads = [int(t) for t in args.threads.split(",")]
    for variant, n in ((v, n) for v in ExportConfig().tflite_variants for n in threads):
        enc, dec, tokens, steps = time_tflite(
            out / pipeline.tflite_name(variant), contract, segs, n)
        name = f"{variant}, {n} thread" + ("s" if n > 1 else "")
        full = time_tflite_full(out / pipeline.tflite_name(variant), contract, segs[0], n)
        print(f"  tflite {name:<20} {1e3 * enc / len(segs):13.1f}  "
              f"{1e3 * dec / max(steps, 1):15.2f}  {tokens / len(segs):10.1f}  "
              f"{(enc + dec) / audio_s:6.3f}  {full / seg_s:8.3f}")
    print(f"\nframe decoder ({decoding.decoder!r} recommended): segments overlap by "
          f"2 x {decoding.frame_margin_s} s; RTF = time / audio time, notes included")
    print("path                         ms/segment  segments  notes    RTF")
    for variant, n in ((v, n) for v in ExportConfig().tflite_variants for n in threads):
        seconds, count, notes = time_tflite_frames(
            out / pipeline.tflite_name(variant), contract, audio, n, decoding)
        name = f"{variant}, {n} thread" + ("s" if n > 1 else "")
        print(f"  tflite {name:<20} {1e3 * seconds / count:11.1f}  {count:8d}  {notes:5d}  "
              f"{seconds / (audio.size / VOCAB.sample_rate):6.3f}")
    print("\ntoken decoder, JAX")
    for batch, cached in ((1, True), (1, False), (len(segs), True)):
        seconds, tokens = time_jax(model, segs, batch, cached)
        full, _ = time_jax(model, segs, batch, cached, full=True)
        name = f"jax batch {batch}" + ("" if cached else ", cross K/V per step")
        print(f"  {name:<27} {'-':>13}  {1e3 * seconds / max(tokens, 1):15.2f}  "
              f"{tokens / len(segs):10.1f}  {seconds / audio_s:6.3f}  {full / audio_s:8.3f}")


if __name__ == "__main__":
    main()
