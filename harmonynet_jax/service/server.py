"""`python -m harmonynet_jax.service` / `harmonynet serve`: the API (uvicorn) and its worker
processes, started and stopped together with one command.

Embedded mode starts `--workers` processes of `harmonynet_jax.service.worker`; with REDIS_URL
it starts that many Celery workers instead (`--workers 0` runs the API alone, for setups whose
workers run elsewhere). A worker that exits - crashed, killed, or ended by a job timeout - is
started again; its job, if any, is requeued by its lease.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from harmonynet_jax.config import ServiceConfig

log = logging.getLogger("harmonynet.service")

EXIT_OK, EXIT_USAGE, EXIT_MODEL = 0, 2, 3


def add_serve_args(ap: argparse.ArgumentParser) -> None:
    """Flags override the environment (HARMONYNET_SERVICE_*, REDIS_URL, HARMONYNET_S3_*)."""
    ap.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, help="port (default 8000)")
    ap.add_argument("--data-dir", metavar="DIR",
                    help="jobs database, uploads and local results (default: per-user cache)")
    ap.add_argument("--workers", type=int, metavar="N",
                    help="worker processes started with the server (default 1; 0: none)")
    ap.add_argument("--checkpoint", metavar="PATH",
                    help="weights file or training run folder (default: the bundled model)")
    ap.add_argument("--max-upload-mb", type=float, metavar="MB", help="largest upload (100)")
    ap.add_argument("--max-audio-minutes", type=float, metavar="MIN",
                    help="longest recording accepted (30; 0: no limit)")
    ap.add_argument("--job-timeout", type=float, metavar="S", dest="job_timeout_s",
                    help="a job running longer fails (900)")
    ap.add_argument("--ttl-hours", type=float, metavar="H",
                    help="jobs and results are deleted this long after they finish (24)")
    ap.add_argument("--token", help="require `Authorization: Bearer TOKEN` (better: set "
                                    "HARMONYNET_SERVICE_TOKEN, which `ps` does not show)")
    ap.add_argument("--redis-url", metavar="URL", help="Celery + Redis mode (env REDIS_URL)")
    ap.add_argument("--lease", type=float, metavar="S", dest="lease_s",
                    help="a job whose worker is silent this long is requeued (30)")
    ap.add_argument("--max-attempts", type=int, metavar="N",
                    help="runs of a job whose workers keep dying before it fails (3)")
    ap.add_argument("--cleanup-interval", type=float, metavar="S", dest="cleanup_interval_s",
                    help="seconds between sweeps for stalled and expired jobs (60)")


def parse_args(argv: Sequence[str] | None, prog: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    add_serve_args(ap)
    return ap.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> ServiceConfig:
    names = ("host", "port", "data_dir", "workers", "checkpoint", "max_upload_mb",
             "max_audio_minutes", "job_timeout_s", "ttl_hours", "token", "redis_url", "lease_s",
             "max_attempts", "cleanup_interval_s")
    return ServiceConfig.from_env(**{n: getattr(args, n, None) for n in names})


class Supervisor:
    """Keeps `count` worker processes running; restarts one that exits (after a pause that
    grows while they keep exiting at once, so a broken setup does not spin)."""

    def __init__(self, cfg: ServiceConfig, count: int) -> None:
        from harmonynet_jax.service.worker import CONFIG_ENV, PARENT_ENV, config_for_worker

        self.cfg = cfg
        self.count = count
        self.env = {**os.environ, CONFIG_ENV: config_for_worker(cfg), PARENT_ENV: str(os.getpid())}
        root = str(Path(__file__).resolve().parents[2])  # the package works from a checkout too
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH"))
                                                 if p)
        self.procs: list[subprocess.Popen | None] = [None] * count
        self.started = [0.0] * count
        self.quick_exits = [0] * count
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def command(self) -> list[str]:
        if self.cfg.redis_url:
            return [sys.executable, "-m", "celery", "-A", "harmonynet_jax.service.celery_queue",
                    "worker", "--concurrency", "1", "--loglevel", "INFO", "--without-gossip",
                    "--without-mingle"]
        return [sys.executable, "-m", "harmonynet_jax.service.worker"]

    def _spawn(self, i: int) -> None:
        self.procs[i] = subprocess.Popen(self.command(), env=self.env)
        self.started[i] = time.monotonic()
        log.info("worker %d started (pid %d)", i, self.procs[i].pid)

    def start(self) -> Supervisor:
        for i in range(self.count):
            self._spawn(i)
        self._thread.start()
        return self

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p is not None and p.poll() is None]

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for i, proc in enumerate(self.procs):
                if proc is None or proc.poll() is None:
                    continue
                quick = time.monotonic() - self.started[i] < 10
                self.quick_exits[i] = self.quick_exits[i] + 1 if quick else 0
                delay = min(30.0, 0.5 * 2 ** max(0, self.quick_exits[i] - 1))
                log.warning("worker %d (pid %d) exited with code %s; restarting in %.1f s", i,
                            proc.pid, proc.returncode, delay)
                if self._stop.wait(delay):
                    return
                self._spawn(i)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM (a worker gives its job back), then SIGKILL after `grace` seconds."""
        self._stop.set()
        self._thread.join(timeout=5)
        live = [p for p in self.procs if p is not None and p.poll() is None]
        for p in live:
            p.terminate()
        deadline = time.monotonic() + grace
        for p in live:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_OK)


def serve(cfg: ServiceConfig) -> int:
    import uvicorn

    from harmonynet_jax.service.app import create_app
    from harmonynet_jax.service.storage import data_path

    if cfg.checkpoint and not Path(cfg.checkpoint).exists():
        print(f"error: checkpoint not found: {cfg.checkpoint}", file=sys.stderr)
        return EXIT_MODEL
    data_path(cfg).mkdir(parents=True, exist_ok=True)
    app = create_app(cfg)  # fails here, before workers start, if Redis or S3 settings are bad
    supervisor = Supervisor(cfg, cfg.workers).start() if cfg.workers else None
    mode = "Celery + Redis" if cfg.redis_url else "embedded queue"
    log.info("serving on http://%s:%d (%s, %d worker process(es), data %s)", cfg.host, cfg.port,
             mode, cfg.workers, data_path(cfg))
    # uvicorn re-raises SIGTERM after its graceful shutdown; turning it into SystemExit lets
    # the `finally` below stop the workers instead of the process dying around them.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info",
                    timeout_graceful_shutdown=5)
    finally:
        if supervisor is not None:
            supervisor.stop()
    return EXIT_OK


def main(argv: Sequence[str] | None = None, prog: str = "python -m harmonynet_jax.service"
         ) -> int:
    return run(parse_args(argv, prog))


def run(args: argparse.Namespace) -> int:
    """Settings from the environment and `args`, then `serve`; errors are one line."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s server %(levelname)s %(message)s")
    try:
        cfg = config_from_args(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    from harmonynet_jax.service.jobs import StoreUnavailable

    try:
        return serve(cfg)
    except StoreUnavailable as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as err:
        print(f"error: {err}; install the service extra: pip install -e '.[service]'",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
