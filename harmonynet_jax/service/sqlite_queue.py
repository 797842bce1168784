"""The embedded job store: one SQLite file in the data folder, shared by the API process and
the worker processes on the same machine. No server to run.

WAL mode lets readers (status polls) go on while a worker writes; every update is a single
`UPDATE ... WHERE version = ?`, so concurrent claims are safe without holding locks across
Python code. Each thread gets its own connection (sqlite3 objects must stay in one thread).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from harmonynet_jax.service.jobs import STATES, TERMINAL, Job, JobStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created);
CREATE INDEX IF NOT EXISTS jobs_by_finished ON jobs (finished);
"""


class SqliteJobStore(JobStore):
    kind = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives process crashes
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def insert(self, job: Job) -> None:
        self._conn().execute(
            "INSERT INTO jobs (id, state, version, created, finished, record) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (job.id, job.state, job.version, job.created, job.finished, job.to_json()))

    def get(self, job_id: str) -> Job | None:
        row = self._conn().execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else Job.from_json(row[0])

    def swap(self, old: Job, new: Job) -> bool:
        finished = new.finished if new.state in TERMINAL else None
        cur = self._conn().execute(
            "UPDATE jobs SET state = ?, version = ?, finished = ?, record = ? "
            "WHERE id = ? AND version = ?",
            (new.state, new.version, finished, new.to_json(), old.id, old.version))
        return cur.rowcount == 1

    def delete(self, job_id: str) -> None:
        self._conn().execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def in_state(self, state: str, limit: int | None = None) -> list[Job]:
        rows = self._conn().execute(
            "SELECT record FROM jobs WHERE state = ? ORDER BY created LIMIT ?",
            (state, -1 if limit is None else limit)).fetchall()
        return [Job.from_json(r[0]) for r in rows]

    def finished_before(self, when: float) -> list[str]:
        rows = self._conn().execute(
            "SELECT id FROM jobs WHERE finished IS NOT NULL AND finished < ?", (when,))
        return [r[0] for r in rows]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for state, n in self._conn().execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
            out[state] = n
        return out

    def ids(self) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT id FROM jobs")}

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
