"""Load test of the web service on loopback: `--uploads` small recordings, `--concurrency`
clients at a time (each uploads, polls its job to the end, downloads the MIDI, repeats),
against a server this script starts (embedded queue, its worker, the bundled model) or one
given by --url. Reports jobs done / failed / lost, throughput and latency percentiles.

A job is "lost" if it was accepted (202) but never reached done or failed before the deadline,
or vanished (404). `--kill-worker K` also SIGKILLs the worker K times while it runs a job (the
server restarts it; the jobs must still finish).

    python benchmarks/service_load.py                          # 200 uploads, 4 concurrent
    python benchmarks/service_load.py --kill-worker 3
    python benchmarks/service_load.py --url http://127.0.0.1:8000 --token T
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "examples" / "mozart_k545_rendered.mp3"


@dataclass
class Outcome:
    state: str  # done, failed, lost, rejected
    latency: float = 0.0  # upload start -> terminal state seen
    upload: float = 0.0  # the POST alone
    attempts: int = 0
    message: str = ""


@dataclass
class Stats:
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_index: int = 0

    def take(self, total: int) -> int | None:
        with self.lock:
            if self.next_index >= total:
                return None
            self.next_index += 1
            return self.next_index - 1

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)


def make_clips(folder: Path, count: int, seconds: float) -> list[Path]:
    """`count` different short MP3 clips cut from the bundled example (22.05 kHz mono)."""
    from harmonynet_jax.ffmpeg import ffmpeg_path

    clips = []
    for i in range(count):
        out = folder / f"clip{i:02d}.mp3"
        subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-ss", f"{i * 1.7:.2f}", "-t",
                        str(seconds), "-i", str(SOURCE), "-ac", "1", "-ar", "22050", "-b:a",
                        "64k", str(out)], check=True)
        clips.append(out)
    return clips


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "harmonynet_jax.service", "--port", str(port), "--data-dir",
           str(data), "--workers", str(args.workers), "--lease", str(args.lease)]
    if args.checkpoint:
        cmd += ["--checkpoint", args.checkpoint]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    log = open(data / "server.log", "wb")  # noqa: SIM115 - the server writes it until stopped
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: see {data / 'server.log'}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start in 120 s")


def client_loop(url: str, headers: dict[str, str], clips: list[Path], args: argparse.Namespace,
                stats: Stats, deadline: float) -> None:
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        while (i := stats.take(args.uploads)) is not None:
            clip = clips[i % len(clips)]
            start = time.perf_counter()
            try:
                with open(clip, "rb") as f:
                    r = c.post("/transcribe", files={"file": (clip.name, f)},
                               data={"formats": args.formats})
            except httpx.HTTPError as err:
                stats.add(Outcome("rejected", message=f"upload: {err}"))
                continue
            upload = time.perf_counter() - start
            if r.status_code != 202:
                stats.add(Outcome("rejected", upload=upload, message=r.text[:200]))
                continue
            job_id = r.json()["job_id"]
            outcome = Outcome("lost", upload=upload, message="no final state before deadline")
            while time.monotonic() < deadline:
                try:
                    s = c.get(f"/status/{job_id}")
                except httpx.HTTPError:
                    time.sleep(args.poll)
                    continue
                if s.status_code == 404:
                    outcome = Outcome("lost", upload=upload, message="job vanished (404)")
                    break
                status = s.json()
                if status["state"] in ("done", "failed"):
                    outcome = Outcome(status["state"], time.perf_counter() - start, upload,
                                      status["attempts"], status.get("message") or "")
                    if status["state"] == "done":
                        midi = c.get(status["results"]["midi"])
                        if midi.status_code != 200 or not midi.content.startswith(b"MThd"):
                            outcome.state, outcome.message = "failed", "bad MIDI download"
                    break
                time.sleep(args.poll)
            stats.add(outcome)


def killer(data: Path, times: int, stop: threading.Event, killed: list[str]) -> None:
    """SIGKILLs the worker running a job, `times` times, a few seconds apart, each time during
    a different job (killing one job's runs over and over would only show it failing after
    max_attempts, which the tests cover)."""
    from harmonynet_jax.service.jobs import PROCESSING
    from harmonynet_jax.service.sqlite_queue import SqliteJobStore

    store = SqliteJobStore(data / "jobs.sqlite3")
    while len(killed) < times and not stop.wait(4.0):
        for job in store.in_state(PROCESSING, limit=1):
            if job.id in killed:
                continue
            try:
                os.kill(int(job.worker.split(":")[1]), signal.SIGKILL)
                killed.append(job.id)
            except ProcessLookupError:
                pass


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else (
        values * 99)
    return (f"p50 {q[49]:.2f} s  p90 {q[89]:.2f} s  p99 {q[98]:.2f} s  "
            f"max {max(values):.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--uploads", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--clip-seconds", type=float, default=3.0)
    ap.add_argument("--formats", default="midi,json")
    ap.add_argument("--workers", type=int, default=1, help="worker processes of the server")
    ap.add_argument("--checkpoint", help="model (default: the bundled one)")
    ap.add_argument("--lease", type=float, default=10.0)
    ap.add_argument("--kill-worker", type=int, default=0, metavar="K",
                    help="SIGKILL the busy worker K times during the run")
    ap.add_argument("--poll", type=float, default=0.2, help="status poll interval (s)")
    ap.add_argument("--deadline", type=float, default=1800.0, help="whole run limit (s)")
    ap.add_argument("--url", help="use this running server instead of starting one")
    ap.add_argument("--token", default=os.environ.get("HARMONYNET_SERVICE_TOKEN"))
    args = ap.parse_args()
    if args.url and args.kill_worker:
        ap.error("--kill-worker needs the server started by this script")

    with tempfile.TemporaryDirectory(prefix="harmonynet-load-") as tmp:
        tmp_path = Path(tmp)
        clips = make_clips(tmp_path, 8, args.clip_seconds)
        data = tmp_path / "data"
        data.mkdir()
        proc = None
        if args.url:
            url = args.url.rstrip("/")
        else:
            proc, url = start_server(data, args)
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        stats = Stats()
        stop = threading.Event()
        killed: list[str] = []
        chaos = (threading.Thread(target=killer, args=(data, args.kill_worker, stop, killed),
                                  daemon=True) if args.kill_worker else None)
        start = time.perf_counter()
        deadline = time.monotonic() + args.deadline
        clients = [threading.Thread(target=client_loop,
                                    args=(url, headers, clips, args, stats, deadline))
                   for _ in range(args.concurrency)]
        if chaos:
            chaos.start()
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        wall = time.perf_counter() - start
        stop.set()
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()

    counts = {s: sum(o.state == s for o in stats.outcomes)
              for s in ("done", "failed", "lost", "rejected")}
    done = [o for o in stats.outcomes if o.state == "done"]
    print(f"service load test: {args.uploads} uploads of {args.clip_seconds:g} s MP3 clips, "
          f"{args.concurrency} concurrent, formats {args.formats}, "
          f"{'server ' + url if args.url else f'{args.workers} worker process(es)'}")
    print(f"jobs: done {counts['done']}  failed {counts['failed']}  lost {counts['lost']}  "
          f"rejected at upload {counts['rejected']}")
    print(f"wall {wall:.1f} s, throughput {counts['done'] / wall:.2f} jobs/s "
          f"({counts['done'] * args.clip_seconds / wall:.1f} s of audio per s)")
    print(f"latency, upload to result: {percentiles([o.latency for o in done])}")
    print(f"upload request alone:      {percentiles([o.upload for o in stats.outcomes])}")
    if args.kill_worker:
        retried = sum(o.attempts > 1 for o in done)
        print(f"worker processes killed mid-job: {len(killed)}; jobs finished on a retry: "
              f"{retried}")
    problems = [o for o in stats.outcomes if o.state != "done"]
    for o in problems[:5]:
        print(f"  {o.state}: {o.message}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
