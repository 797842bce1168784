"""Where uploads and results live: a local folder, or an S3-compatible bucket (AWS S3,
Cloudflare R2, MinIO, ...) when `s3_bucket` is set, so API and workers on different machines
share them. Keys look like `<job id>/input.mp3` and `<job id>/result.mid`.

S3 credentials come from boto3's usual sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
a profile, an instance role); the endpoint, region and prefix from ServiceConfig.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from harmonynet_jax.config import ServiceConfig

CHUNK = 1 << 20


class Storage(Protocol):
    kind: str

    def put(self, key: str, src: Path, *, move: bool = False) -> None:
        """Stores the file `src` under `key` (moving it when `move` and possible)."""

    def fetch(self, key: str, dest: Path) -> None:
        """Copies `key` to the file `dest`; FileNotFoundError when it is missing."""

    def local_path(self, key: str) -> Path | None:
        """A path the API can serve directly, if the object is a local file."""

    def stream(self, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks; FileNotFoundError when it is missing."""

    def delete(self, key: str) -> None:
        """One object (missing is fine)."""

    def delete_job(self, job_id: str) -> None:
        """Everything stored for the job (missing is fine)."""

    def jobs(self) -> dict[str, float]:
        """Job ids that have stored objects -> their newest modification time (for orphans)."""


class LocalStorage:
    kind = "local"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        job_id, _, name = key.partition("/")
        if not job_id or "/" in name or name in ("", ".", "..") or job_id in (".", ".."):
            raise ValueError(f"bad storage key {key!r}")
        return self.root / job_id / name

    def put(self, key: str, src: Path, *, move: bool = False) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        if move:
            try:
                os.replace(src, dest)
                return
            except OSError:  # another file system: copy instead
                pass
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)  # readers never see half a file

    def fetch(self, key: str, dest: Path) -> None:
        shutil.copyfile(self._path(key), dest)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def stream(self, key: str) -> Iterator[bytes]:
        with open(self._path(key), "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_job(self, job_id: str) -> None:
        shutil.rmtree(self.root / job_id, ignore_errors=True)

    def jobs(self) -> dict[str, float]:
        out = {}
        for d in self.root.iterdir():
            if d.is_dir():
                times = [p.stat().st_mtime for p in d.iterdir()] or [d.stat().st_mtime]
                out[d.name] = max(times)
        return out


class S3Storage:
    kind = "s3"

    def __init__(self, bucket: str, prefix: str = "", endpoint: str | None = None,
                 region: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.client = boto3.client(
            "s3", endpoint_url=endpoint or None, region_name=region or None,
            config=Config(retries={"max_attempts": 5, "mode": "standard"},
                          connect_timeout=10, read_timeout=60))

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _missing(self, err: Exception) -> bool:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NotFound")

    def put(self, key: str, src: Path, *, move: bool = False) -> None:
        self.client.upload_file(str(src), self.bucket, self._key(key))
        if move:
            Path(src).unlink(missing_ok=True)

    def fetch(self, key: str, dest: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.bucket, self._key(key), str(dest))
        except ClientError as err:
            if self._missing(err):
                raise FileNotFoundError(f"not in storage: {key}") from None
            raise

    def local_path(self, key: str) -> Path | None:
        return None

    def stream(self, key: str) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as err:
            if self._missing(err):
                raise FileNotFoundError(f"not in storage: {key}") from None
            raise
        return _chunks(body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_job(self, job_id: str) -> None:
        keys = [{"Key": o["Key"]} for o in self._objects(self._key(job_id + "/"))]
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys[i:i + 1000]})

    def jobs(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for obj in self._objects(self.prefix):
            job_id = obj["Key"][len(self.prefix):].partition("/")[0]
            out[job_id] = max(out.get(job_id, 0.0), obj["LastModified"].timestamp())
        return out

    def _objects(self, prefix: str) -> Iterator[dict]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                      Prefix=prefix)
        for page in pages:
            yield from page.get("Contents", [])


def _chunks(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK)
    finally:
        body.close()


def data_path(cfg: ServiceConfig) -> Path:
    """The service's own folder (jobs database, staged uploads, local results)."""
    if cfg.data_dir:
        return Path(cfg.data_dir).expanduser()
    from harmonynet_jax.cache import cache_dir

    return cache_dir("service")


def make_storage(cfg: ServiceConfig) -> Storage:
    if cfg.s3_bucket:
        return S3Storage(cfg.s3_bucket, cfg.s3_prefix, cfg.s3_endpoint, cfg.s3_region)
    return LocalStorage(data_path(cfg) / "files")


def stale_files(folder: Path, older_than: float) -> list[Path]:
    """Entries of `folder` not modified for `older_than` seconds (left by crashed uploads)."""
    if not folder.is_dir():
        return []
    now = time.time()
    return [p for p in folder.iterdir() if now - p.stat().st_mtime > older_than]
