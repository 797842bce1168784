"""A transcription job, its life cycle, and the store that both queues share.

States: pending -> processing -> done | failed. A worker owns a processing job through a lease
that its heartbeat renews; when the lease runs out (or the worker's process is gone), the sweep
puts the job back to pending, and after `max_attempts` runs marks it failed with a message, so
no job is ever lost silently. Every change is a compare-and-swap on the record's `version`, so
two workers, a late heartbeat and the sweep can never both win; the backends (SQLite, Redis)
only provide load / insert / swap / delete.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import secrets
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from harmonynet_jax.cli import DECODER_CHOICES, FORMATS, parse_formats, parse_tempo, parse_time_sig

PENDING, PROCESSING, DONE, FAILED = "pending", "processing", "done", "failed"
STATES = (PENDING, PROCESSING, DONE, FAILED)
TERMINAL = frozenset({DONE, FAILED})
ENGRAVERS = ("auto", "verovio", "lilypond", "musescore")
MEDIA_TYPES = {
    "midi": "audio/midi",
    "musicxml": "application/vnd.recordare.musicxml+xml",
    "pdf": "application/pdf",
    "json": "application/json",
}
JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class OptionError(ValueError):
    """A job option the user must fix (the message says which and how)."""


class StoreUnavailable(RuntimeError):
    """The job store cannot be reached (e.g. Redis is down)."""


@dataclass(frozen=True)
class JobOptions:
    """What the CLI's transcribe command takes, per job (validated by the CLI's own parsers)."""

    formats: tuple[str, ...] = ("midi",)
    decoder: str | None = None  # None: what the model recommends
    batch_size: int = 8
    title: str | None = None
    composer: str | None = None
    tempo: float | None = None
    time_sig: str | None = None
    engraver: str = "auto"

    @classmethod
    def parse(cls, formats: str = "midi", decoder: str | None = None, batch_size: int = 8,
              title: str | None = None, composer: str | None = None,
              tempo: float | None = None, time_sig: str | None = None,
              engraver: str = "auto") -> JobOptions:
        try:
            fmts = tuple(parse_formats(formats))
            tempo = None if tempo is None else parse_tempo(str(tempo))
            time_sig = None if time_sig in (None, "") else parse_time_sig(time_sig)
        except (argparse.ArgumentTypeError, ValueError) as err:
            raise OptionError(str(err)) from None
        if decoder not in (None, *DECODER_CHOICES):
            raise OptionError(f"decoder must be one of {', '.join(DECODER_CHOICES)}")
        if engraver not in ENGRAVERS:
            raise OptionError(f"engraver must be one of {', '.join(ENGRAVERS)}")
        if not 1 <= batch_size <= 64:
            raise OptionError(f"batch_size must be 1..64, got {batch_size}")
        for name, text in (("title", title), ("composer", composer)):
            if text is not None and (len(text) > 200 or any(ord(c) < 32 for c in text)):
                raise OptionError(f"{name} must be one line of at most 200 characters")
        return cls(fmts, decoder, batch_size, title or None, composer or None, tempo, time_sig,
                   engraver)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobOptions:
        return cls(**{**d, "formats": tuple(d.get("formats", ("midi",)))})


@dataclass
class Job:
    """One upload and what became of it. `version` increases with every change."""

    id: str
    filename: str  # the upload's name as the user gave it (for download names only)
    input_key: str  # where the upload is in storage
    options: JobOptions
    created: float
    state: str = PENDING
    version: int = 0
    attempts: int = 0  # runs started (a run ended by a graceful shutdown is given back)
    started: float | None = None
    finished: float | None = None
    worker: str | None = None
    lease_until: float | None = None
    message: str | None = None  # why it failed, or what happened on the way
    outputs: tuple[str, ...] = ()  # formats written
    errors: dict[str, str] = field(default_factory=dict)  # format -> why it was not written
    audio_seconds: float | None = None
    notes: int | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Job:
        d = json.loads(text)
        d["options"] = JobOptions.from_dict(d["options"])
        d["outputs"] = tuple(d.get("outputs", ()))
        return cls(**d)


def new_job(filename: str, suffix: str, options: JobOptions, audio_seconds: float | None,
            job_id: str | None = None) -> Job:
    job_id = job_id or secrets.token_hex(16)
    return Job(id=job_id, filename=filename, input_key=input_key(job_id, suffix),
               options=options, created=time.time(), audio_seconds=audio_seconds)


def input_key(job_id: str, suffix: str) -> str:
    return f"{job_id}/input{suffix}"


def result_key(job_id: str, fmt: str) -> str:
    return f"{job_id}/result{FORMATS[fmt]}"


def _host() -> str:
    """This machine and pid namespace (containers sharing a host name differ in the latter),
    so a pid is only ever checked where it means the same process."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}@{namespace}"


def worker_identity() -> str:
    """host@pidns:pid:nonce, so the sweep can tell a dead local worker from a slow one."""
    return f"{_host()}:{os.getpid()}:{secrets.token_hex(3)}"


def worker_is_gone(worker: str | None) -> bool:
    """True when `worker` ran here and its process no longer exists (or is a zombie nobody
    reaped); workers elsewhere are judged by their lease alone."""
    if not worker:
        return False
    host, _, rest = worker.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _host() or not pid_text.isdigit():
        return False
    try:
        with open(f"/proc/{pid_text}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except OSError:
        return False


class JobStore(ABC):
    """Job records with compare-and-swap updates; the life cycle is implemented once here."""

    kind = "abstract"

    # --- what a backend provides -------------------------------------------------------------

    @abstractmethod
    def insert(self, job: Job) -> None: ...

    @abstractmethod
    def get(self, job_id: str) -> Job | None: ...

    @abstractmethod
    def swap(self, old: Job, new: Job) -> bool:
        """Replaces `old` by `new` (whose version is old.version + 1) if the stored version is
        still old.version."""

    @abstractmethod
    def delete(self, job_id: str) -> None: ...

    @abstractmethod
    def in_state(self, state: str, limit: int | None = None) -> list[Job]:
        """Jobs in `state`, oldest first."""

    @abstractmethod
    def finished_before(self, when: float) -> list[str]:
        """Ids of done/failed jobs that finished before `when`."""

    @abstractmethod
    def counts(self) -> dict[str, int]: ...

    @abstractmethod
    def ids(self) -> set[str]: ...

    def close(self) -> None:  # noqa: B027 - optional for backends
        pass

    # --- the life cycle ----------------------------------------------------------------------

    def add(self, job: Job) -> None:
        self.insert(job)

    def _mutate(self, job_id: str, change: Callable[[Job], dict[str, Any] | None]) -> Job | None:
        """Applies `change` (fields to set, or None: not allowed now) atomically; retries when
        someone else changed the record in between. Returns the new record or None."""
        for _ in range(20):
            job = self.get(job_id)
            if job is None:
                return None
            fields = change(job)
            if fields is None:
                return None
            new = dataclasses.replace(job, version=job.version + 1, **fields)
            if self.swap(job, new):
                return new
        return None

    def claim(self, worker: str, lease_s: float, max_attempts: int,
              job_id: str | None = None) -> Job | None:
        """Takes a job to run: `job_id` (a Celery delivery) or the oldest pending one. A job
        still held by a live worker is not taken twice; a stale one is taken over (or failed,
        once it has had `max_attempts` runs)."""
        if job_id is not None:
            job = self.get(job_id)
            if job is None:
                return None
            if job.state == PROCESSING and self._stale(job):
                self._requeue_or_fail(job, max_attempts)
            return self._take(job_id, worker, lease_s, max_attempts)
        for job in self.in_state(PENDING, limit=8):
            taken = self._take(job.id, worker, lease_s, max_attempts)
            if taken is not None:
                return taken
        return None

    def _take(self, job_id: str, worker: str, lease_s: float, max_attempts: int) -> Job | None:
        def change(job: Job) -> dict[str, Any] | None:
            if job.state != PENDING:
                return None
            now = time.time()
            retry = (f"attempt {job.attempts + 1} of {max_attempts} (an earlier worker stopped)"
                     if job.attempts else None)
            return {"state": PROCESSING, "worker": worker, "lease_until": now + lease_s,
                    "started": now, "attempts": job.attempts + 1, "message": retry}

        return self._mutate(job_id, change)

    def heartbeat(self, job_id: str, worker: str, lease_s: float) -> bool:
        """Renews the lease; False when the job is no longer this worker's."""
        def change(job: Job) -> dict[str, Any] | None:
            if job.state != PROCESSING or job.worker != worker:
                return None
            return {"lease_until": time.time() + lease_s}

        return self._mutate(job_id, change) is not None

    def finish(self, job_id: str, worker: str, outputs: Iterable[str], errors: dict[str, str],
               notes: int, audio_seconds: float) -> bool:
        def change(job: Job) -> dict[str, Any] | None:
            if job.state != PROCESSING or job.worker != worker:
                return None
            message = ("; ".join(f"{f} not written: {m}" for f, m in errors.items())
                       if errors else None)
            return {"state": DONE, "finished": time.time(), "outputs": tuple(outputs),
                    "errors": dict(errors), "notes": notes, "audio_seconds": audio_seconds,
                    "lease_until": None, "message": message}

        return self._mutate(job_id, change) is not None

    def fail(self, job_id: str, message: str, worker: str | None = None) -> bool:
        """Marks the job failed; with `worker`, only while that worker still owns it."""
        def change(job: Job) -> dict[str, Any] | None:
            if job.state in TERMINAL or (worker is not None and job.worker != worker):
                return None
            return {"state": FAILED, "finished": time.time(), "message": message,
                    "lease_until": None}

        return self._mutate(job_id, change) is not None

    def release(self, job_id: str, worker: str) -> bool:
        """Gives a job back untouched (graceful shutdown): pending again, the run not counted."""
        def change(job: Job) -> dict[str, Any] | None:
            if job.state != PROCESSING or job.worker != worker:
                return None
            return {"state": PENDING, "worker": None, "lease_until": None,
                    "attempts": max(0, job.attempts - 1), "message": None}

        return self._mutate(job_id, change) is not None

    def _stale(self, job: Job, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return (job.lease_until is not None and job.lease_until < now) or worker_is_gone(
            job.worker)

    def _requeue_or_fail(self, job: Job, max_attempts: int) -> str | None:
        """A job whose worker stopped: back to pending, or failed after `max_attempts` runs.
        Returns the new state, or None if the job changed meanwhile."""
        def change(cur: Job) -> dict[str, Any] | None:
            if cur.state != PROCESSING or cur.worker != job.worker or not self._stale(cur):
                return None
            if cur.attempts >= max_attempts:
                return {"state": FAILED, "finished": time.time(), "lease_until": None,
                        "message": f"the worker stopped (crashed or was killed) during each of "
                                   f"{cur.attempts} attempt(s); giving up"}
            return {"state": PENDING, "worker": None, "lease_until": None,
                    "message": f"requeued: the worker stopped during attempt {cur.attempts} of "
                               f"{max_attempts}"}

        new = self._mutate(job.id, change)
        return None if new is None else new.state

    def recover(self, max_attempts: int) -> tuple[list[str], list[str]]:
        """Every processing job whose worker stopped: (requeued ids, failed ids)."""
        requeued, failed = [], []
        for job in self.in_state(PROCESSING):
            if self._stale(job):
                state = self._requeue_or_fail(job, max_attempts)
                if state == PENDING:
                    requeued.append(job.id)
                elif state == FAILED:
                    failed.append(job.id)
        return requeued, failed
