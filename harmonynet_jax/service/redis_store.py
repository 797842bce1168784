"""Job records in Redis (Celery mode), with the same compare-and-swap contract as SQLite.

Layout under `prefix`: job:<id> (hash: version, state, record), jobs (zset by creation time),
state:<state> (a set per state, for counts and the sweep), finished (zset by finish time, for
the TTL). A swap is one Lua script, so it is atomic on the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis

from harmonynet_jax.service.jobs import STATES, TERMINAL, Job, JobStore, StoreUnavailable

T = TypeVar("T")

# KEYS: job hash, old state set, new state set, finished zset.
# ARGV: expected version, new version, new state, record, job id, finished time ('' if none).
SWAP = """
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'state', ARGV[3], 'record', ARGV[4])
redis.call('SREM', KEYS[2], ARGV[5])
redis.call('SADD', KEYS[3], ARGV[5])
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5]) end
return 1
"""


class RedisJobStore(JobStore):
    kind = "redis"

    def __init__(self, url: str, prefix: str = "harmonynet:") -> None:
        self.url = url
        self.prefix = prefix
        self.r = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                      health_check_interval=30)
        self._swap = self.r.register_script(SWAP)

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except redis.exceptions.ConnectionError as err:
            raise StoreUnavailable(f"Redis at {self._safe_url()} is unreachable: {err}") from err
        except redis.exceptions.TimeoutError as err:
            raise StoreUnavailable(f"Redis at {self._safe_url()} timed out") from err

    def _safe_url(self) -> str:
        """The URL without a password, for messages."""
        head, sep, tail = self.url.rpartition("@")
        return ("redis://***@" + tail) if sep else self.url

    def insert(self, job: Job) -> None:
        def run() -> None:
            pipe = self.r.pipeline(transaction=True)
            pipe.hset(self._k("job", job.id), mapping={
                "version": str(job.version), "state": job.state, "record": job.to_json()})
            pipe.zadd(self._k("jobs"), {job.id: job.created})
            pipe.sadd(self._k("state", job.state), job.id)
            pipe.execute()

        self._call(run)

    def get(self, job_id: str) -> Job | None:
        raw = self._call(lambda: self.r.hget(self._k("job", job_id), "record"))
        return None if raw is None else Job.from_json(raw)

    def swap(self, old: Job, new: Job) -> bool:
        finished = repr(new.finished) if new.state in TERMINAL and new.finished else ""
        keys = [self._k("job", old.id), self._k("state", old.state), self._k("state", new.state),
                self._k("finished")]
        args: list[Any] = [str(old.version), str(new.version), new.state, new.to_json(), old.id,
                           finished]
        return bool(self._call(lambda: self._swap(keys=keys, args=args)))

    def delete(self, job_id: str) -> None:
        def run() -> None:
            pipe = self.r.pipeline(transaction=True)
            pipe.delete(self._k("job", job_id))
            pipe.zrem(self._k("jobs"), job_id)
            pipe.zrem(self._k("finished"), job_id)
            for state in STATES:
                pipe.srem(self._k("state", state), job_id)
            pipe.execute()

        self._call(run)

    def in_state(self, state: str, limit: int | None = None) -> list[Job]:
        ids = self._call(lambda: self.r.smembers(self._k("state", state)))
        jobs = [j for j in (self.get(i.decode()) for i in ids) if j is not None]
        jobs.sort(key=lambda j: j.created)
        return jobs if limit is None else jobs[:limit]

    def finished_before(self, when: float) -> list[str]:
        ids = self._call(lambda: self.r.zrangebyscore(self._k("finished"), "-inf", f"({when}"))
        return [i.decode() for i in ids]

    def counts(self) -> dict[str, int]:
        def run() -> list[int]:
            pipe = self.r.pipeline(transaction=False)
            for state in STATES:
                pipe.scard(self._k("state", state))
            return pipe.execute()

        return dict(zip(STATES, self._call(run), strict=True))

    def ids(self) -> set[str]:
        return {i.decode() for i in self._call(lambda: self.r.zrange(self._k("jobs"), 0, -1))}

    def ping(self) -> None:
        self._call(self.r.ping)

    def close(self) -> None:
        self.r.close()
