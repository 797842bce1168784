"""Helpers shared by the web service tests (and benchmarks/service_load.py): a real server
process on a free loopback port, a real redis-server, a tiny random-weight model, and HTTP
helpers to submit a file and wait for its job."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "fixture_maestro"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_checkpoint(folder: Path) -> Path:
    """A tiny random-weight model saved like real weights (fast to load and compile)."""
    import jax

    from harmonynet_jax.config import ModelConfig
    from harmonynet_jax.model import HarmonyNet
    from harmonynet_jax.weights import save_weights

    model = HarmonyNet(ModelConfig.preset("tiny"), key=jax.random.key(0))
    return save_weights(folder / "tiny.eqx", model, dtype="float32")


def child_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HARMONYNET_SERVICE_", "HARMONYNET_S3_")) and k != "REDIS_URL"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("HARMONYNET_JAX_CACHE", str(tmp / "jax-cache"))
    env.update(extra)
    return env


class ServiceProcess:
    """`python -m harmonynet_jax.service ...` on a free port; its output goes to a log file."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"service-{self.port}.log"
        with open(self.log_path, "wb") as log:  # the child keeps its own handle
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "harmonynet_jax.service", "--port", str(self.port),
                 *args], cwd=ROOT, env=env or child_env(tmp), stdout=log,
                stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> ServiceProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited ({self.proc.returncode}):\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code in (200, 503):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"service not ready after {timeout} s:\n{self.log()}")

    def log(self, tail: int = 6000) -> str:
        """The server's output (its last `tail` characters; 0: all of it)."""
        return self.log_path.read_text(errors="replace")[-tail:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class RedisServer:
    """A throw-away redis-server on a free loopback port (no persistence)."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (scripts/setup.sh installs it)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        tmp.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def submit(client: httpx.Client, path: Path, **form: str) -> str:
    with open(path, "rb") as f:
        r = client.post("/transcribe", files={"file": (path.name, f)}, data=form)
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def wait_for(client: httpx.Client, job_id: str, states: tuple[str, ...],
             timeout: float = 60.0, interval: float = 0.05) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/status/{job_id}")
        assert r.status_code == 200, r.text
        status = r.json()
        if status["state"] in states:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {status['state']} after {timeout} s: "
                               f"{status}")
        time.sleep(interval)


def worker_pid(worker: str) -> int:
    """The pid in a worker id (host:pid:nonce)."""
    return int(worker.split(":")[1])
