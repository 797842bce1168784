"""The transcription web service (docs/service.md): a FastAPI app that takes uploads, a queue
of jobs and workers that run the model, and storage for the results.

`python -m harmonynet_jax.service` (or `harmonynet serve`) starts the API and its workers with
one command. Modules, one concern each:
  jobs.py          the job record, its states and the store's state machine (leases, retries)
  sqlite_queue.py  the embedded store: one SQLite file, no other service needed
  redis_store.py   the same records in Redis, for Celery mode
  celery_queue.py  the Celery app and task (REDIS_URL set)
  storage.py       uploads and results on the local disk or an S3-compatible bucket
  worker.py        runs jobs: model loaded once, heartbeat, a hard per-job timeout
  cleanup.py       the periodic sweep: requeue jobs of dead workers, delete expired ones
  app.py           the HTTP API, limits and auth; page.html is its upload page
  server.py        the command: settings, worker processes and uvicorn

Importing this package is cheap (no FastAPI, JAX or Celery), so the CLI can offer `serve`.
"""
