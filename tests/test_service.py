"""The web service for real: the job store's life cycle on SQLite and on a real redis-server
(leases, retries, giving up with a message), the TTL sweep, upload checks (size, content by
decoding, options, token) through the app, S3 storage against a local S3 server (moto), and a
real server process with its embedded worker: all four formats from a real recording, a worker
killed mid-job (the job is requeued and finished), a job timeout, and schemathesis against the
served OpenAPI schema."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import httpx
import mido
import pytest
from service_support import (
    FIXTURE,
    ROOT,
    RedisServer,
    ServiceProcess,
    child_env,
    free_port,
    submit,
    tiny_checkpoint,
    wait_for,
    worker_pid,
)

from harmonynet_jax.config import ServiceConfig
from harmonynet_jax.service.cleanup import sweep
from harmonynet_jax.service.jobs import (
    DONE,
    FAILED,
    PENDING,
    PROCESSING,
    JobOptions,
    new_job,
    result_key,
    worker_identity,
)
from harmonynet_jax.service.sqlite_queue import SqliteJobStore
from harmonynet_jax.service.storage import LocalStorage

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note about httpx versions
    from fastapi.testclient import TestClient

from harmonynet_jax.service.app import create_app  # noqa: E402

PIECE = FIXTURE / "2017" / "fixture_04.flac"  # 7.5 s
SHORT = FIXTURE / "2019" / "fixture_06.wav"  # 4.1 s
TOKEN = "test-token-123"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis"))
    except FileNotFoundError as err:
        pytest.skip(str(err))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SqliteJobStore(tmp_path / "jobs.sqlite3")
    else:
        from harmonynet_jax.service.redis_store import RedisJobStore

        url = request.getfixturevalue("redis_server").url
        s = RedisJobStore(url, prefix=f"test-{tmp_path.name}:")
    yield s
    s.close()


# --- the job store ----------------------------------------------------------------------------


def test_store_lease_expiry_requeues_then_fails_with_a_message(store) -> None:
    job = new_job("a.mp3", ".mp3", JobOptions(), 1.0)
    store.add(job)
    assert store.counts()[PENDING] == 1
    for attempt in (1, 2, 3):
        taken = store.claim(f"elsewhere:{attempt}:x", lease_s=0.05, max_attempts=3)
        assert taken is not None and taken.state == PROCESSING and taken.attempts == attempt
        assert store.claim("other:1:y", lease_s=5, max_attempts=3) is None  # held: not twice
        time.sleep(0.1)  # the worker went silent: its lease runs out
        requeued, failed = store.recover(max_attempts=3)
        if attempt < 3:
            assert requeued == [job.id] and not failed
            assert "requeued" in store.get(job.id).message
        else:
            assert failed == [job.id] and not requeued
    final = store.get(job.id)
    assert final.state == FAILED and "each of 3 attempt(s)" in final.message
    assert not store.heartbeat(job.id, "elsewhere:3:x", 5)  # a late worker cannot revive it
    assert not store.finish(job.id, "elsewhere:3:x", ["midi"], {}, 1, 1.0)


def test_store_claims_are_exclusive_and_ownership_is_checked(store) -> None:
    jobs = [new_job(f"{i}.wav", ".wav", JobOptions(), 1.0) for i in range(12)]
    for job in jobs:
        store.add(job)
    taken: list[str] = []
    lock = threading.Lock()

    def claim_all(worker: str) -> None:
        while (job := store.claim(worker, lease_s=30, max_attempts=3)) is not None:
            with lock:
                taken.append(job.id)

    threads = [threading.Thread(target=claim_all, args=(f"h:{i}:n",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(j.id for j in jobs)  # each job exactly once
    job = store.get(jobs[0].id)
    assert not store.finish(job.id, "not-the-owner:1:z", ["midi"], {}, 3, 1.0)
    assert store.heartbeat(job.id, job.worker, 30)
    assert store.finish(job.id, job.worker, ["midi"], {"pdf": "engraver missing"}, 3, 1.0)
    done = store.get(job.id)
    assert done.state == DONE and done.outputs == ("midi",) and "pdf not written" in done.message
    other = store.get(jobs[1].id)
    assert store.release(other.id, other.worker)  # graceful shutdown: the run is not counted
    assert store.get(other.id).state == PENDING and store.get(other.id).attempts == 0


def test_a_dead_local_worker_is_noticed_before_its_lease_ends(store) -> None:
    job = new_job("a.wav", ".wav", JobOptions(), 1.0)
    store.add(job)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = worker_identity().split(":")[0]
    assert store.claim(f"{here}:{os.getpid()}:n", 300, 3) is not None
    assert store.recover(max_attempts=3) == ([], [])  # alive: its lease is trusted
    store._mutate(job.id, lambda j: {"worker": f"{here}:{dead.pid}:n"})
    assert store.recover(max_attempts=3) == ([job.id], [])


def test_ttl_sweep_deletes_old_jobs_their_files_and_orphans(tmp_path) -> None:
    cfg = ServiceConfig(data_dir=str(tmp_path), ttl_hours=1.0)
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    storage = LocalStorage(tmp_path / "files")
    src = tmp_path / "x.mid"
    src.write_bytes(b"MThd")
    old, fresh, waiting = (new_job(n, ".wav", JobOptions(), 1.0) for n in "abc")
    for job in (old, fresh, waiting):
        store.add(job)
        storage.put(result_key(job.id, "midi"), src)
    for job in (old, fresh):
        claimed = store.claim("h:1:n", 30, 3, job_id=job.id)
        store.finish(claimed.id, "h:1:n", ["midi"], {}, 1, 1.0)
    storage.put("f" * 32 + "/result.mid", src)  # files without a job (a crashed upload)
    later = time.time() + 2 * 3600
    store._mutate(fresh.id, lambda j: {"finished": later - 60})  # finished just now, then
    report = sweep(store, storage, cfg, now=later)
    assert report.deleted == [old.id] and report.orphans == ["f" * 32]
    assert report.failed == [waiting.id]  # nobody took it within the TTL: failed, not lost
    assert store.get(old.id) is None and not (tmp_path / "files" / old.id).exists()
    assert store.get(fresh.id).state == DONE and (tmp_path / "files" / fresh.id).exists()
    assert "no worker took this job" in store.get(waiting.id).message


# --- the API without workers ------------------------------------------------------------------


@pytest.fixture
def client(tmp_path):
    cfg = ServiceConfig(data_dir=str(tmp_path), max_upload_mb=1.0, token=TOKEN,
                        max_audio_minutes=0.1)
    with TestClient(create_app(cfg), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def test_uploads_are_checked_by_size_content_and_options(client, tmp_path) -> None:
    def post(name: str, content: bytes, **form: str) -> httpx.Response:
        return client.post("/transcribe", files={"file": (name, content)}, data=form)

    cases = [
        (post("song.mp3", b"this is text, not audio" * 20), 415, "not an audio file"),
        (post("song.mp3", b""), 422, "empty"),
        (post("song.mp3", os.urandom(2 * 2**20)), 413, "limit of 1 MB"),
        (post("song.wav", b"x", formats="midi,wav"), 422, "a comma list of midi"),
        (post("song.wav", b"x", time_sig="3/5"), 422, "time signature"),
        (post("song.wav", b"x", tempo="1000"), 422, "tempo"),
        (client.post("/transcribe", data={"formats": "midi"}), 422, "file is required"),
    ]
    long_wav = tmp_path / "long.wav"  # 9 s > the 0.1 min limit of this app
    subprocess.run([_ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "sine=f=440:r=8000",
                    "-t", "9", str(long_wav)], check=True)
    cases.append((post("long.wav", long_wav.read_bytes()), 422, "at most 0.1 min"))
    for response, code, words in cases:
        assert response.status_code == code, response.text
        body = response.json()
        assert set(body) == {"detail"} and words in body["detail"], body
        assert "\n" not in body["detail"] and "Traceback" not in body["detail"]

    def chunks():  # no Content-Length: the limit applies while the body streams in
        yield (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n'
               b"Content-Type: audio/mpeg\r\n\r\n")
        for _ in range(30):
            yield b"y" * 100_000
        yield b"\r\n--b--\r\n"

    r = client.post("/transcribe", content=chunks(),
                    headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    # A WAV named .mp3 is fine: the content decides, not the name.
    r = post("actually-wav.mp3", SHORT.read_bytes(), formats="midi,pdf")
    assert r.status_code == 202, r.text
    status = client.get(r.json()["status_url"]).json()
    assert status["state"] == PENDING and status["formats"] == ["midi", "pdf"]
    assert status["audio_seconds"] == pytest.approx(4.095, abs=0.01)
    r = client.get(f"/result/{status['job_id']}/midi")
    assert r.status_code == 409 and "pending" in r.json()["detail"]


def test_token_status_page_and_schema(client) -> None:
    anonymous = {"Authorization": ""}
    for method, path in (("get", "/status/" + "0" * 32), ("post", "/transcribe"),
                         ("get", "/result/" + "0" * 32 + "/midi")):
        r = client.request(method, path, headers=anonymous)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
    r = client.get("/status/" + "0" * 32, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert client.get("/status/" + "0" * 32).status_code == 404
    r = client.get("/status/not-an-id")
    assert r.status_code == 422 and r.json()["detail"] == "job_id must be 32 hex digits"
    health = client.get("/health", headers=anonymous).json()
    assert health["status"] == "ok" and health["queue"] == "sqlite" and health["auth"] is True
    page = client.get("/", headers=anonymous)
    assert page.status_code == 200 and "<form" in page.text and '"auth": true' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    schema = client.get("/openapi.json", headers=anonymous).json()
    assert set(schema["paths"]) == {"/transcribe", "/status/{job_id}",
                                    "/result/{job_id}/{fmt}", "/health"}
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


# --- S3-compatible storage --------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    pytest.importorskip("moto.server")
    port = free_port()
    tmp = tmp_path_factory.mktemp("moto")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=child_env(tmp))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_s3_storage_round_trip_and_download_through_the_api(s3_endpoint, tmp_path,
                                                            monkeypatch) -> None:
    import boto3

    from harmonynet_jax.service.storage import S3Storage

    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="scores")
    storage = S3Storage("scores", "hn/", s3_endpoint, "us-east-1")
    cfg = ServiceConfig(data_dir=str(tmp_path), s3_bucket="scores", s3_endpoint=s3_endpoint)
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    midi = tmp_path / "r.mid"
    mido.MidiFile(type=0, tracks=[mido.MidiTrack([mido.Message("note_on", note=60)])]).save(midi)
    job = new_job("My Song.flac", ".flac", JobOptions(formats=("midi", "pdf")), 4.0)
    store.add(job)
    storage.put(job.input_key, PIECE)
    storage.fetch(job.input_key, tmp_path / "back.flac")
    assert (tmp_path / "back.flac").read_bytes() == PIECE.read_bytes()
    storage.put(result_key(job.id, "midi"), midi)
    claimed = store.claim("h:1:n", 30, 3)
    store.finish(claimed.id, "h:1:n", ["midi"], {"pdf": "engraver missing"}, 1, 4.0)
    with TestClient(create_app(cfg, store=store, storage=storage)) as c:
        r = c.get(f"/result/{job.id}/midi")
        assert r.status_code == 200 and r.content == midi.read_bytes()
        assert r.headers["content-type"] == "audio/midi"
        assert "My%20Song.mid" in r.headers["content-disposition"]
        r = c.get(f"/result/{job.id}/pdf")
        assert r.status_code == 404 and "engraver missing" in r.json()["detail"]
    assert set(storage.jobs()) == {job.id}
    storage.delete_job(job.id)
    assert storage.jobs() == {}
    with pytest.raises(FileNotFoundError):
        storage.fetch(job.input_key, tmp_path / "gone.flac")


# --- a real server with its worker ------------------------------------------------------------


@pytest.fixture(scope="module")
def service(checkpoint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("service")
    env = child_env(tmp, HARMONYNET_SERVICE_TOKEN=TOKEN)
    server = ServiceProcess(tmp, "--data-dir", str(tmp / "data"), "--checkpoint",
                            str(checkpoint), "--lease", "2", "--cleanup-interval", "1",
                            "--workers", "1", env=env).wait_ready()
    server.data = tmp / "data"
    yield server
    code = server.stop()
    assert code == 0, server.log()


def test_worker_killed_mid_job_is_replaced_and_the_job_finishes(service) -> None:
    """All four formats from a real recording, after the first worker was SIGKILLed while it
    ran the job: the job is requeued (lease / dead pid), the restarted worker finishes it."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=service.url, headers=headers, timeout=30) as c:
        job_id = submit(c, SHORT, formats="midi,musicxml,pdf,json", title="Study",
                        decoder="tokens", batch_size="4")
        wait_for(c, job_id, (PROCESSING,), timeout=60, interval=0.02)
        record = SqliteJobStore(service.data / "jobs.sqlite3").get(job_id)
        os.kill(worker_pid(record.worker), signal.SIGKILL)
        status = wait_for(c, job_id, (DONE, FAILED), timeout=90)
        assert status["state"] == DONE, (status, service.log())
        assert status["attempts"] == 2, status
        assert set(status["results"]) == {"midi", "musicxml", "pdf", "json"}
        files = {}
        for fmt, url in status["results"].items():
            r = c.get(url)
            assert r.status_code == 200, r.text
            files[fmt] = r
        assert 'filename="fixture_06.mid"' in files["midi"].headers["content-disposition"]
    midi_path = service.data / "check.mid"
    midi_path.write_bytes(files["midi"].content)
    midi = mido.MidiFile(midi_path)
    note_ons = [m for t in midi.tracks for m in t if m.type == "note_on" and m.velocity > 0]
    doc = json.loads(files["json"].content)
    assert len(note_ons) == len(doc["notes"]) == status["notes"] > 0
    assert doc["source"] == "fixture_06.wav"
    assert b"<score-partwise" in files["musicxml"].content and b"Study" in files[
        "musicxml"].content
    assert files["pdf"].content.startswith(b"%PDF")
    assert "exited with code -9; restarting" in service.log(tail=0)


def test_schemathesis_against_the_served_schema(service, tmp_path) -> None:
    """Generated requests (valid and invalid) for every operation: no server errors, and
    status codes, content types, headers and bodies as the schema documents them."""
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "schemathesis.cli"]
    done = subprocess.run(
        [*cmd, "run", f"{service.url}/openapi.json", "--checks",
         "not_a_server_error,status_code_conformance,content_type_conformance,"
         "response_headers_conformance,response_schema_conformance",
         "--max-examples", "15", "--phases", "examples,coverage,fuzzing", "--seed", "1",
         "--workers", "1", "--header", f"Authorization: Bearer {TOKEN}",
         "--generation-database", "none", "--request-timeout", "30", "--no-color"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=child_env(tmp_path))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "4 selected" in done.stdout, done.stdout[-2000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert cases and cases[1] == cases[2] and int(cases[1]) > 50, done.stdout[-2000:]


def test_a_job_over_the_timeout_fails_and_its_worker_process_ends(checkpoint, tmp_path) -> None:
    """The watchdog for real: a standalone worker with a 1 s timeout takes a job that needs
    longer, records 'timed out after 1 s' and exits (75) so the computation really stops."""
    data = tmp_path / "data"
    store = SqliteJobStore(data / "jobs.sqlite3")
    long = tmp_path / "long.flac"  # 60 s, one segment per model call: seconds of work
    subprocess.run([_ffmpeg(), "-v", "error", "-stream_loop", "7", "-i", str(PIECE), str(long)],
                   check=True)
    job = new_job("long.flac", ".flac", JobOptions(decoder="tokens", batch_size=1), 60.0)
    LocalStorage(data / "files").put(job.input_key, long)
    store.add(job)
    env = child_env(tmp_path, HARMONYNET_JAX_CACHE="off")  # compiling alone takes over 1 s
    done = subprocess.run(
        [sys.executable, "-m", "harmonynet_jax.service.worker", "--data-dir", str(data),
         "--checkpoint", str(checkpoint), "--job-timeout", "1"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 75, done.stderr[-3000:]
    final = store.get(job.id)
    assert final.state == FAILED and final.message == "timed out after 1 s"
    assert "Traceback" not in done.stderr


def _ffmpeg() -> str:
    from harmonynet_jax.ffmpeg import ffmpeg_path

    return ffmpeg_path()
