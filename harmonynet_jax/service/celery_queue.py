"""Celery mode (REDIS_URL set): Redis is the broker, the result backend and the job store, so
API and workers can run on different machines (give them shared storage: an S3 bucket).

Start workers with
    REDIS_URL=redis://host:6379/0 celery -A harmonynet_jax.service.celery_queue worker
(`harmonynet serve` starts `--workers` of them itself). A task only carries the job id; the job
record in Redis (harmonynet_jax.service.redis_store) holds the state and the lease. Messages are
acknowledged after the task (acks_late) and given back when the worker process dies
(reject_on_worker_lost), and a delivery of a job that another live worker holds or that has
already finished does nothing, so redelivery and the sweep's re-sends are both safe.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

from celery import Celery

from harmonynet_jax.config import ServiceConfig
from harmonynet_jax.service.jobs import JobStore
from harmonynet_jax.service.storage import Storage, make_storage

log = logging.getLogger("harmonynet.service.worker")

TASK = "harmonynet.transcribe"
QUEUE = "harmonynet"


def configure(app: Celery, cfg: ServiceConfig) -> Celery:
    app.conf.update(
        broker_url=cfg.redis_url,
        result_backend=cfg.redis_url,
        task_default_queue=QUEUE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # The watchdog ends a job at job_timeout_s; this hard limit is only a backstop.
        task_time_limit=cfg.job_timeout_s + 60,
        # An unacknowledged message of a worker that vanished comes back after this long.
        broker_transport_options={"visibility_timeout": max(3600, int(2 * cfg.job_timeout_s))},
        result_expires=int(cfg.ttl_s),
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.2,
                                   "interval_step": 0.5, "interval_max": 2},
        worker_hijack_root_logger=False,
    )
    return app


def _config() -> ServiceConfig:
    from harmonynet_jax.service.worker import CONFIG_ENV

    raw = os.environ.get(CONFIG_ENV)  # set when `harmonynet serve` started this worker
    return ServiceConfig(**json.loads(raw)) if raw else ServiceConfig.from_env()


CONFIG = _config()
app = Celery("harmonynet")
if CONFIG.redis_url:
    configure(app, CONFIG)


class CeleryDispatcher:
    """The API side: sends job ids to the workers."""

    def __init__(self, cfg: ServiceConfig) -> None:
        self.app = configure(Celery("harmonynet-api"), cfg)

    def __call__(self, job_id: str) -> None:
        self.app.send_task(TASK, args=[job_id], queue=QUEUE)

    def requeue(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            self(job_id)


@dataclass
class _Context:
    store: JobStore
    storage: Storage
    transcriber: object
    worker: str


_context: _Context | None = None


def worker_context() -> _Context:
    """Per worker process (a prefork child), made on its first task: JAX and the model are
    loaded after the fork, never before it."""
    global _context
    if _context is None:
        from harmonynet_jax.service.jobs import worker_identity
        from harmonynet_jax.service.redis_store import RedisJobStore
        from harmonynet_jax.service.worker import Transcriber

        if not CONFIG.redis_url:
            raise RuntimeError("REDIS_URL is not set")
        _context = _Context(RedisJobStore(CONFIG.redis_url), make_storage(CONFIG),
                            Transcriber(CONFIG.checkpoint).load(), worker_identity())
    return _context


@app.task(name=TASK, acks_late=True, reject_on_worker_lost=True)
def transcribe_job(job_id: str) -> str:
    """Claims the job (if no live worker holds it and it is not finished) and runs it."""
    from harmonynet_jax.service.worker import process

    ctx = worker_context()
    job = ctx.store.claim(ctx.worker, CONFIG.lease_s, CONFIG.max_attempts, job_id=job_id)
    if job is None:
        current = ctx.store.get(job_id)
        state = current.state if current else "unknown"
        log.info("job %s not taken (state %s)", job_id, state)
        return state
    log.info("job %s: %s (attempt %d)", job.id, job.filename, job.attempts)
    return process(job, ctx.store, ctx.storage, ctx.transcriber, CONFIG, ctx.worker)
