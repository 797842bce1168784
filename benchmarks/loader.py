"""Segments/s of the Rust `Stream` against a straightforward pure-Python loader (mido +
ffmpeg-python + numpy) over the same MAESTRO-layout folder, cold (decoding) and warm (cached).

    python benchmarks/loader.py --data DIR [--batches 40] [--threads 2]

Both loaders do the same work per segment: random 2 s slice of 16 kHz audio, the segment's
tokens (tie section, time / velocity / note events) and Onsets & Frames targets.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import ffmpeg
import mido
import numpy as np

from harmonynet_jax import data
from harmonynet_jax import tokens as T
from harmonynet_jax.ffmpeg import ffmpeg_path

V = T.VOCAB


class PythonLoader:
    """The loader one would write first: decode with ffmpeg-python, parse with mido."""

    def __init__(self, root: Path, split: str, segment: int, batch: int, seed: int,
                 cache: Path | None, hop: int = 320, max_tokens: int = 512) -> None:
        with open(root / "maestro-v3.0.0.csv", newline="") as f:
            self.rows = [r for r in csv.DictReader(f) if r["split"] == split]
        self.root, self.segment, self.batch, self.hop = root, segment, batch, hop
        self.max_tokens = max_tokens
        self.rng = np.random.default_rng(seed)
        self.cache = cache
        self.performances = [self._midi(root / r["midi_filename"]) for r in self.rows]

    @staticmethod
    def _midi(path: Path):
        notes, pedals, sounding, pedal_on, t = [], [], {}, None, 0.0
        for msg in mido.MidiFile(str(path)):
            t += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                if msg.note in sounding:
                    on, vel = sounding.pop(msg.note)
                    notes.append((on, t, msg.note, vel))
                sounding[msg.note] = (t, msg.velocity)
            elif msg.type in ("note_off", "note_on") and msg.note in sounding:
                on, vel = sounding.pop(msg.note)
                notes.append((on, t, msg.note, vel))
            elif msg.type == "control_change" and msg.control == 64:
                if msg.value >= 64 and pedal_on is None:
                    pedal_on = t
                elif msg.value < 64 and pedal_on is not None:
                    pedals.append((pedal_on, t))
                    pedal_on = None
        notes += [(on, t, p, vel) for p, (on, vel) in sounding.items()]
        return sorted(notes), pedals

    def _audio(self, path: Path) -> np.ndarray:
        if self.cache is not None:
            cached = self.cache / (path.name + ".npy")
            if cached.exists():
                return np.load(cached, mmap_mode="r")
        out, _ = (
            ffmpeg.input(str(path))
            .output("pipe:", format="f32le", ac=1, ar=16000)
            .run(cmd=ffmpeg_path(), capture_stdout=True, capture_stderr=True)
        )
        audio = np.frombuffer(out, np.float32)
        if self.cache is not None:
            np.save(self.cache / (path.name + ".npy"), audio)
        return audio

    def _tokens(self, notes, pedals, start_s: float, steps: int) -> list[int]:
        s = round(start_s * V.steps_per_second)
        e = s + steps
        grid = [(round(a * 100), max(round(b * 100), round(a * 100) + 1), p, v)
                for a, b, p, v in notes if 21 <= p <= 108]
        toks = []
        if any(round(a * 100) < s < round(b * 100) for a, b in pedals):
            toks.append(V.pedal_on)
        toks += [V.note(p) for a, b, p, _ in sorted(grid, key=lambda n: n[2]) if a < s < b]
        toks.append(V.tie_end)
        events = []
        for a, b, p, v in grid:
            if s <= a < e:
                events.append((a, 3, p, 1 + (v - 1) * 32 // 127))
            if s < b < e:
                events.append((b, 0, p, 0))
        for a, b in pedals:
            a, b = round(a * 100), round(b * 100)
            if s <= a < e:
                events.append((a, 2, 0, 0))
            if s < b < e:
                events.append((b, 1, 0, 0))
        time_, vel = None, None
        for t, kind, p, v in sorted(events):
            if t != time_:
                toks.append(V.time(t - s))
                time_ = t
            if kind in (0, 3):
                if vel != v:
                    toks.append(V.velocity(v))
                    vel = v
                toks.append(V.note(p))
            else:
                toks.append(V.pedal_off if kind == 1 else V.pedal_on)
        toks.append(V.eos)
        return toks[: self.max_tokens]

    def _frames(self, notes, start: int) -> np.ndarray:
        frames = self.segment // self.hop
        out = np.zeros((4, frames, 88), np.float32)
        for a, b, p, v in notes:
            if not 21 <= p <= 108:
                continue
            on, off = a * 16000 - start, b * 16000 - start
            if off <= 0 or on >= self.segment:
                continue
            f0 = int(max(on, 0) // self.hop)
            f1 = int(min(off - 1, self.segment - 1) // self.hop)
            out[1, f0 : f1 + 1, p - 21] = 1
            if on >= 0:
                out[0, f0, p - 21] = 1
                out[3, f0, p - 21] = v / 127
            if off <= self.segment:
                out[2, f1, p - 21] = 1
        return out

    def __next__(self) -> dict[str, np.ndarray]:
        audio = np.zeros((self.batch, self.segment), np.float32)
        tokens = np.zeros((self.batch, self.max_tokens), np.int32)
        targets = np.zeros((self.batch, 4, self.segment // self.hop, 88), np.float32)
        for i in range(self.batch):
            k = int(self.rng.integers(len(self.rows)))
            row = self.rows[k]
            room = max(0, int(float(row["duration"]) * 16000) - self.segment) // 160
            start = int(self.rng.integers(room + 1)) * 160
            wav = self._audio(self.root / row["audio_filename"])
            chunk = wav[start : start + self.segment]
            audio[i, : len(chunk)] = chunk
            notes, pedals = self.performances[k]
            toks = self._tokens(notes, pedals, start / 16000, self.segment // 160)
            tokens[i, : len(toks)] = toks
            targets[i] = self._frames(notes, start)
        return {"audio": audio, "tokens": tokens, "targets": targets}


def rate(loader, batches: int, batch_size: int) -> float:
    next(loader)  # start-up (threads, index) is not what is measured
    t0 = time.perf_counter()
    for _ in range(batches):
        next(loader)
    return batches * batch_size / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--segment", type=int, default=32_000)
    args = ap.parse_args()

    with open(args.data / "maestro-v3.0.0.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == args.split]
    hours = sum(float(r["duration"]) for r in rows) / 3600
    print(f"data: {args.data} split={args.split}: {len(rows)} pieces, {hours:.2f} h; "
          f"segment {args.segment} samples, batch {args.batch_size}, {args.batches} batches")

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for phase in ("cold", "warm"):
            # Cold: a new, empty cache; every first touch of a piece decodes it.
            rust_cache = tmp / f"rust-{phase}" if phase == "cold" else tmp / "rust-cold"
            py_cache = tmp / "py"
            py_cache.mkdir(exist_ok=True)
            if phase == "cold":
                for f in py_cache.iterdir():
                    f.unlink()
            stream = data.Stream(args.data, args.split, args.segment, args.batch_size, seed=0,
                                 threads=args.threads, prefetch=2 * args.threads,
                                 cache_dir=rust_cache)
            results[("rust", phase)] = rate(stream, args.batches, args.batch_size)
            stream.close()
            py = PythonLoader(args.data, args.split, args.segment, args.batch_size, 0, py_cache)
            results[("python", phase)] = rate(py, args.batches, args.batch_size)

    print(f"{'phase':6} {'python seg/s':>13} {'rust seg/s':>11} {'ratio':>7}")
    for phase in ("cold", "warm"):
        p, r = results[("python", phase)], results[("rust", phase)]
        print(f"{phase:6} {p:13.1f} {r:11.1f} {r / p:6.1f}x")


if __name__ == "__main__":
    main()
