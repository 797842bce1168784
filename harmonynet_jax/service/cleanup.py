"""The periodic sweep, run by the API process (so it runs in both queue modes): jobs of
workers that stopped go back to the queue (or fail after too many tries), jobs nobody picked
up within the TTL fail, and finished jobs older than the TTL are deleted with their files.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harmonynet_jax.config import ServiceConfig
from harmonynet_jax.service.jobs import PENDING, JobStore, StoreUnavailable
from harmonynet_jax.service.storage import Storage, stale_files

log = logging.getLogger("harmonynet.service")


@dataclass
class SweepReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)


def sweep(store: JobStore, storage: Storage, cfg: ServiceConfig, *,
          requeue: Callable[[list[str]], None] | None = None, staging: Path | None = None,
          now: float | None = None) -> SweepReport:
    """One pass. `requeue` re-sends requeued jobs to the broker (Celery mode); `staging` is the
    folder of uploads being checked (leftovers of crashed requests are removed)."""
    now = time.time() if now is None else now
    report = SweepReport()
    for job_id in store.finished_before(now - cfg.ttl_s):
        storage.delete_job(job_id)
        store.delete(job_id)
        report.deleted.append(job_id)
    report.requeued, report.failed = store.recover(cfg.max_attempts)
    if report.requeued and requeue is not None:
        requeue(report.requeued)
    for job in store.in_state(PENDING):
        if now - job.created > cfg.ttl_s and store.fail(
                job.id, f"no worker took this job within {cfg.ttl_hours:g} h"):
            report.failed.append(job.id)
    known = store.ids()
    for job_id, modified in storage.jobs().items():
        if job_id not in known and now - modified > cfg.ttl_s:
            storage.delete_job(job_id)
            report.orphans.append(job_id)
    if staging is not None:
        for path in stale_files(staging, older_than=max(3600.0, 2 * cfg.decode_timeout_s)):
            path.unlink(missing_ok=True)
    if report.requeued or report.failed or report.deleted or report.orphans:
        log.info("sweep: %d requeued, %d failed, %d expired jobs deleted, %d orphans removed",
                 len(report.requeued), len(report.failed), len(report.deleted),
                 len(report.orphans))
    return report


class Sweeper:
    """Runs `fn` every `interval` seconds on a daemon thread until stopped; an error is logged
    and retried next time (a Redis outage must not end the sweeping)."""

    def __init__(self, fn: Callable[[], object], interval: float) -> None:
        self.fn = fn
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.fn()
            except StoreUnavailable as err:
                log.warning("sweep skipped: %s", err)
            except Exception:
                log.exception("sweep failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
