"""Runs transcription jobs: the model is loaded once per process, each job goes through the
same API as the CLI (`inference.transcribe` + `Transcription.write`), results go to storage.

While a job runs, a heartbeat thread renews its lease (a worker that dies stops renewing, and
the job is requeued) and a watchdog enforces the per-job timeout for real: JAX cannot be
interrupted from Python, so at the deadline the watchdog marks the job failed and ends the whole
process (exit 75); the server restarts it, with the compiled model functions in the JAX cache.

`python -m harmonynet_jax.service.worker` runs the embedded loop (SQLite queue); the server
starts these itself, and more can be started by hand against the same data folder.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harmonynet_jax.cli import FORMATS
from harmonynet_jax.config import InferenceConfig, ServiceConfig
from harmonynet_jax.service.jobs import Job, JobOptions, JobStore, StoreUnavailable, result_key
from harmonynet_jax.service.storage import Storage, data_path, make_storage

log = logging.getLogger("harmonynet.service.worker")

CONFIG_ENV = "HARMONYNET_SERVICE_CONFIG"  # the server hands its settings to workers here
PARENT_ENV = "HARMONYNET_SERVICE_PARENT"  # pid of the server; workers stop when it is gone
EXIT_TIMEOUT = 75


def one_line(text: object, limit: int = 500) -> str:
    """Messages for users: one line, bounded."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class Shutdown(BaseException):
    """Raised by the signal handler to leave a running job (BaseException: not an error)."""


class Transcriber:
    """The model, loaded once per process. A model that cannot be loaded is not fatal: each job
    fails with the reason, so users see it instead of jobs that never start."""

    def __init__(self, checkpoint: str | None) -> None:
        self.checkpoint = checkpoint
        self.model: Any = None
        self.origin = ""
        self.cfg = InferenceConfig()
        self.error: str | None = None

    def load(self) -> Transcriber:
        from harmonynet_jax.cache import enable_jax_compile_cache
        from harmonynet_jax.inference import ModelUnavailable, load_model, tuned_config

        logging.getLogger("absl").setLevel(logging.CRITICAL)
        logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # "no TPU" notes
        enable_jax_compile_cache()
        try:
            self.model, self.origin = load_model(self.checkpoint, self.cfg)
            self.cfg = tuned_config(self.origin, self.cfg)
            log.info("model %s loaded (decoder %s)", self.origin, self.cfg.decoder)
        except ModelUnavailable as err:
            self.error = one_line(err)
            log.error("%s", self.error)
        return self

    def run(self, audio: Path, options: JobOptions, out_dir: Path, filename: str
            ) -> tuple[dict[str, Path], dict[str, str], int, float]:
        """(written {format: path}, errors {format: message}, note count, audio seconds)."""
        from harmonynet_jax.inference import ModelUnavailable, transcribe

        if self.model is None:
            raise ModelUnavailable(self.error or "the model is not loaded")
        result = transcribe(audio, model=self.model, checkpoint=self.origin,
                            decoder=options.decoder, batch_size=options.batch_size,
                            config=self.cfg)
        result.source = filename
        plan = {f: out_dir / f"result{FORMATS[f]}" for f in options.formats}
        written, errors = result.write(
            plan, title=options.title, composer=options.composer, tempo=options.tempo,
            time_signature=options.time_sig, engraver=options.engraver,
            ticks_per_beat=self.cfg.midi_ticks_per_beat, default_tempo=self.cfg.midi_tempo_bpm)
        done = {f: p for f, p in plan.items() if p in written}
        return done, {f: one_line(m) for f, m in errors}, len(result.notes), result.duration


class _JobThread:
    """A daemon thread beside one running job, started and stopped as a context manager;
    subclasses implement `_run`, which ends when `_stop` is set."""

    name = "job-thread"

    def __init__(self, store: JobStore, job_id: str, worker: str) -> None:
        self.store, self.job_id, self.worker = store, job_id, worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


class Heartbeat(_JobThread):
    """Renews the job's lease every lease/3 s while the job runs."""

    name = "heartbeat"

    def __init__(self, store: JobStore, job_id: str, worker: str, lease_s: float) -> None:
        super().__init__(store, job_id, worker)
        self.lease_s = lease_s

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                if not self.store.heartbeat(self.job_id, self.worker, self.lease_s):
                    log.warning("job %s is no longer ours (requeued or failed elsewhere)",
                                self.job_id)
                    return
            except StoreUnavailable as err:
                log.warning("heartbeat: %s", err)

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._thread.join(timeout=5)


class Watchdog(_JobThread):
    """Fails the job and ends the process when the job outlives `timeout` seconds."""

    name = "watchdog"

    def __init__(self, store: JobStore, job_id: str, worker: str, timeout: float) -> None:
        super().__init__(store, job_id, worker)
        self.timeout = timeout

    def _run(self) -> None:
        if self._stop.wait(self.timeout):
            return
        message = f"timed out after {self.timeout:g} s"
        try:
            self.store.fail(self.job_id, message, worker=self.worker)
        except Exception as err:  # the sweep fails it later (lease) if the store is down now
            log.error("could not record the timeout of job %s: %s", self.job_id, err)
        log.error("job %s %s; stopping this worker process to stop it", self.job_id, message)
        logging.shutdown()
        os._exit(EXIT_TIMEOUT)


def process(job: Job, store: JobStore, storage: Storage, transcriber: Transcriber,
            cfg: ServiceConfig, worker: str) -> str:
    """Runs one claimed job to done or failed (never leaves it processing unless the process
    dies, which the lease covers). Returns the final state as recorded."""
    from harmonynet_jax.inference import InferenceError

    start = time.perf_counter()
    suffix = Path(job.input_key).suffix
    with tempfile.TemporaryDirectory(prefix="harmonynet-job-") as tmp, \
            Heartbeat(store, job.id, worker, cfg.lease_s), \
            Watchdog(store, job.id, worker, cfg.job_timeout_s):
        tmp_path = Path(tmp)
        try:
            audio = tmp_path / f"input{suffix}"
            storage.fetch(job.input_key, audio)
            written, errors, notes, seconds = transcriber.run(audio, job.options, tmp_path,
                                                              job.filename)
            if not written:
                raise RuntimeError("no output could be written: " + "; ".join(
                    f"{f}: {m}" for f, m in errors.items()))
            for fmt, path in written.items():
                storage.put(result_key(job.id, fmt), path, move=True)
        except FileNotFoundError as err:
            state = _fail(store, job, f"the upload is missing from storage ({err})", worker)
        except InferenceError as err:
            state = _fail(store, job, one_line(err), worker)
        except Exception as err:
            log.exception("job %s failed", job.id)
            state = _fail(store, job, one_line(f"{type(err).__name__}: {err}"), worker)
        else:
            ok = store.finish(job.id, worker, written, errors, notes, seconds)
            state = "done" if ok else "lost"
            log.info("job %s done: %d notes, %.1f s audio in %.1f s%s", job.id, notes, seconds,
                     time.perf_counter() - start, "" if ok else " (but no longer ours)")
    if state in ("done", "failed"):
        storage.delete(job.input_key)
    return state


def _fail(store: JobStore, job: Job, message: str, worker: str) -> str:
    log.warning("job %s failed: %s", job.id, message)
    return "failed" if store.fail(job.id, message, worker=worker) else "lost"


def run_embedded(cfg: ServiceConfig) -> int:
    """The worker loop of the embedded queue: claim, run, repeat; stops on SIGTERM/SIGINT
    (a job in progress is given back to the queue) or when the server is gone."""
    from harmonynet_jax.service.jobs import worker_identity
    from harmonynet_jax.service.sqlite_queue import SqliteJobStore

    store = SqliteJobStore(data_path(cfg) / "jobs.sqlite3")
    storage = make_storage(cfg)
    worker = worker_identity()
    busy = threading.Event()
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        if busy.is_set():
            raise Shutdown

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = int(os.environ.get(PARENT_ENV, "0") or 0)
    if parent:
        _die_with_parent()
    transcriber = Transcriber(cfg.checkpoint).load()
    log.info("worker %s ready (data %s, storage %s)", worker, data_path(cfg), storage.kind)
    while not stop.is_set():
        if parent and os.getppid() != parent:
            log.warning("the server (pid %d) is gone; stopping", parent)
            break
        job = None
        try:
            store.recover(cfg.max_attempts)
            job = store.claim(worker, cfg.lease_s, cfg.max_attempts)
            if job is None:
                stop.wait(cfg.poll_interval_s)
                continue
            log.info("job %s: %s (attempt %d)", job.id, job.filename, job.attempts)
            busy.set()
            process(job, store, storage, transcriber, cfg, worker)
        except Shutdown:
            if job is not None and store.release(job.id, worker):
                log.info("job %s given back to the queue", job.id)
            break
        except StoreUnavailable as err:
            log.warning("%s", err)
            stop.wait(1.0)
        finally:
            busy.clear()
    store.close()
    return 0


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when the server process dies, even by SIGKILL (the loop's
    parent check covers other systems, between jobs)."""
    if not sys.platform.startswith("linux"):
        return
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def config_for_worker(cfg: ServiceConfig) -> str:
    """The settings a worker needs, as JSON for CONFIG_ENV (the API token stays out)."""
    return json.dumps({**asdict(cfg), "token": None})


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s worker[{os.getpid()}] %(levelname)s %(message)s")
    raw = os.environ.get(CONFIG_ENV)
    if raw and argv is None:
        cfg = ServiceConfig(**json.loads(raw))
    else:
        from harmonynet_jax.service.server import config_from_args, parse_args

        try:
            cfg = config_from_args(parse_args(argv, prog="python -m harmonynet_jax.service.worker"))
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return run_embedded(cfg)


if __name__ == "__main__":
    sys.exit(main())
