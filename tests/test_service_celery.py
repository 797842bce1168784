"""Celery + Redis mode for real: a redis-server on a free port, the service started with
--redis-url (it starts a Celery worker, prefork, one child), a job whose worker process is
SIGKILLed mid-job finishing on its second attempt, and clear 503s when Redis goes away."""

from __future__ import annotations

import os
import signal
import warnings

import httpx
import mido
import pytest
from service_support import (
    FIXTURE,
    RedisServer,
    ServiceProcess,
    submit,
    tiny_checkpoint,
    wait_for,
    worker_pid,
)

from harmonynet_jax.config import ServiceConfig
from harmonynet_jax.service.jobs import DONE, FAILED, PROCESSING

pytest.importorskip("celery")
PIECE = FIXTURE / "2017" / "fixture_04.flac"


@pytest.fixture
def redis_server(tmp_path):
    try:
        server = RedisServer(tmp_path / "redis")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    yield server
    server.stop()


def test_celery_worker_killed_mid_job_the_job_still_finishes(redis_server, tmp_path) -> None:
    from harmonynet_jax.service.redis_store import RedisJobStore

    checkpoint = tiny_checkpoint(tmp_path)
    server = ServiceProcess(tmp_path, "--redis-url", redis_server.url, "--workers", "1",
                            "--checkpoint", str(checkpoint), "--data-dir", str(tmp_path / "d"),
                            "--lease", "2", "--cleanup-interval", "1").wait_ready()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            health = c.get("/health").json()
            assert health["queue"] == "redis" and health["storage"] == "local"
            job_id = submit(c, PIECE, formats="midi,json", decoder="tokens", batch_size="2")
            wait_for(c, job_id, (PROCESSING,), timeout=90, interval=0.02)
            record = RedisJobStore(redis_server.url).get(job_id)
            os.kill(worker_pid(record.worker), signal.SIGKILL)  # the prefork child
            status = wait_for(c, job_id, (DONE, FAILED), timeout=120)
            assert status["state"] == DONE and status["attempts"] == 2, (status, server.log())
            midi = c.get(status["results"]["midi"])
            assert midi.status_code == 200
        path = tmp_path / "out.mid"
        path.write_bytes(midi.content)
        notes = [m for t in mido.MidiFile(path).tracks for m in t
                 if m.type == "note_on" and m.velocity > 0]
        assert len(notes) == status["notes"] > 0
        assert "WorkerLostError" in server.log(tail=0)
    finally:
        assert server.stop() == 0, server.log()


def test_redis_going_away_gives_503_not_a_traceback(redis_server, tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from harmonynet_jax.service.app import create_app

    cfg = ServiceConfig(data_dir=str(tmp_path), redis_url=redis_server.url)
    with TestClient(create_app(cfg)) as c:
        assert c.get("/health").json()["queue"] == "redis"
        redis_server.stop()
        for response in (c.get("/health"), c.get("/status/" + "0" * 32),
                         c.post("/transcribe", files={"file": ("a.flac", PIECE.read_bytes())})):
            assert response.status_code == 503, response.text
            assert response.json() == {"detail": "the job store is unavailable; try again later"}


def test_serve_reports_an_unreachable_redis_in_one_line(tmp_path, capsys) -> None:
    from service_support import free_port

    from harmonynet_jax.service.server import main

    code = main(["--redis-url", f"redis://127.0.0.1:{free_port()}/0", "--data-dir",
                 str(tmp_path), "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: Redis at redis://127.0.0.1:") and "\n" not in (
        err.strip()) and "Traceback" not in err

