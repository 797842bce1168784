"""The HTTP API: upload -> job id, status, results, health, and the upload page.

Uploads are checked before a job exists: the bearer token and the declared size before the
body is read, the streamed size while it is read (413 as soon as it passes the limit), then
the content by decoding it with the project's own ffmpeg decoder (415 when it is not audio,
whatever its name says; 422 when it is empty or too long). Every error is one line of JSON,
`{"detail": "..."}`; tracebacks stay in the server log.

(No `from __future__ import annotations` here: FastAPI reads the route signatures at run time,
and the token dependency is a local name.)
"""

import asyncio
import hmac
import json
import logging
import re
import shutil
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harmonynet_jax.cli import FORMATS
from harmonynet_jax.config import ServiceConfig
from harmonynet_jax.service.cleanup import Sweeper, sweep
from harmonynet_jax.service.jobs import (
    DONE,
    FAILED,
    JOB_ID,
    MEDIA_TYPES,
    PENDING,
    Job,
    JobOptions,
    JobStore,
    OptionError,
    StoreUnavailable,
    new_job,
    result_key,
)
from harmonynet_jax.service.storage import Storage, data_path, make_storage
from harmonynet_jax.tokens import VOCAB

log = logging.getLogger("harmonynet.service")

PAGE = Path(__file__).with_name("page.html")
UPLOAD_PATH = "/transcribe"
MULTIPART_SLACK = 64 * 1024  # form fields and boundaries around the file
Format = Literal["midi", "musicxml", "pdf", "json"]
_FORMAT = r"\s*(midi|mid|musicxml|xml|mxl|pdf|json)\s*"
FORMATS_PATTERN = f"^{_FORMAT}(,{_FORMAT})*$"
PATTERN_HINTS = {"formats": "a comma list of midi, musicxml, pdf, json",
                 "time_sig": "N/D, such as 3/4", "job_id": "32 hex digits"}
JobIdParam = Annotated[str, PathParam(pattern=JOB_ID.pattern, description="a job id")]


# --- response models --------------------------------------------------------------------------


class ErrorBody(BaseModel):
    detail: str = Field(description="what went wrong, in one line")


class Submitted(BaseModel):
    job_id: str
    state: Literal["pending"] = PENDING
    status_url: str


class JobStatus(BaseModel):
    job_id: str
    state: Literal["pending", "processing", "done", "failed"]
    message: str | None = Field(None, description="why it failed, or what happened on the way")
    filename: str
    formats: list[str] = Field(description="formats requested")
    results: dict[str, str] = Field(description="format -> download path, once done")
    errors: dict[str, str] = Field(description="format -> why it was not written")
    attempts: int
    created: str
    started: str | None = None
    finished: str | None = None
    audio_seconds: float | None = None
    notes: int | None = None


class Health(BaseModel):
    status: Literal["ok"]
    queue: str
    storage: str
    auth: bool
    jobs: dict[str, int]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorBody} for c in codes}


# --- the upload gate --------------------------------------------------------------------------


class UploadTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"upload larger than the limit of {limit / 2**20:g} MB")


class UploadGate:
    """ASGI middleware for POST /transcribe: refuses a missing token or a declared size over
    the limit before reading the body, and stops reading one whose stream passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, token: str | None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != UPLOAD_PATH:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if self.token is not None and not token_ok(headers.get("authorization"), self.token):
            await unauthorized()(scope, receive, send)
            return
        limit = self.max_bytes + MULTIPART_SLACK
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await JSONResponse({"detail": UploadTooLarge(self.max_bytes).detail}, 413,
                               headers={"Connection": "close"})(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise UploadTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


def token_ok(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())


def unauthorized() -> JSONResponse:
    return JSONResponse({"detail": "missing or wrong bearer token (Authorization: Bearer ...)"},
                        401, headers={"WWW-Authenticate": "Bearer"})


# --- helpers ----------------------------------------------------------------------------------


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def clean_filename(name: str | None) -> str:
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(c for c in base if c.isprintable()).strip()[:200]
    return base or "upload"


def clean_suffix(name: str) -> str:
    """A short alphanumeric suffix kept only as a hint for ffmpeg (content decides)."""
    suffix = Path(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ".bin"


def download_name(job: Job, fmt: str) -> str:
    return (Path(job.filename).stem or "transcription") + FORMATS[fmt]


def status_of(job: Job) -> JobStatus:
    results = ({f: f"/result/{job.id}/{f}" for f in job.options.formats if f in job.outputs}
               if job.state == DONE else {})
    return JobStatus(job_id=job.id, state=job.state, message=job.message, filename=job.filename,
                     formats=list(job.options.formats), results=results, errors=job.errors,
                     attempts=job.attempts, created=iso(job.created), started=iso(job.started),
                     finished=iso(job.finished), audio_seconds=job.audio_seconds,
                     notes=job.notes)


def validation_message(err: RequestValidationError) -> str:
    first = err.errors()[0] if err.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "path", "query"))
    what = first.get("msg", "invalid request")
    if first.get("type") == "missing":
        what = "is required"
    elif first.get("type") == "string_pattern_mismatch":
        what = "must be " + PATTERN_HINTS.get(where, "of the documented form")
    return " ".join(f"{where} {what}".split()) if where else what


# --- the app ----------------------------------------------------------------------------------


def make_backend(cfg: ServiceConfig) -> tuple[JobStore, Callable[[str], None],
                                              Callable[[list[str]], None] | None]:
    """(store, dispatch a new job, re-send requeued jobs) for the configured mode."""
    if cfg.redis_url:
        from harmonynet_jax.service.celery_queue import CeleryDispatcher
        from harmonynet_jax.service.redis_store import RedisJobStore

        store = RedisJobStore(cfg.redis_url)
        store.ping()
        dispatcher = CeleryDispatcher(cfg)
        return store, dispatcher, dispatcher.requeue
    from harmonynet_jax.service.sqlite_queue import SqliteJobStore

    return SqliteJobStore(data_path(cfg) / "jobs.sqlite3"), lambda job_id: None, None


def create_app(cfg: ServiceConfig, *, store: JobStore | None = None,
               storage: Storage | None = None,
               dispatch: Callable[[str], None] | None = None) -> FastAPI:
    """The API for `cfg`; store, storage and dispatch default to what `cfg` configures."""
    if store is None:
        store, default_dispatch, requeue = make_backend(cfg)
        dispatch = dispatch or default_dispatch
    else:
        requeue = None
        dispatch = dispatch or (lambda job_id: None)
    storage = storage or make_storage(cfg)
    staging = data_path(cfg) / "uploads"
    staging.mkdir(parents=True, exist_ok=True)
    decode_slots = asyncio.Semaphore(cfg.decode_concurrency)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        sweeper = Sweeper(lambda: sweep(store, storage, cfg, requeue=requeue, staging=staging),
                          cfg.cleanup_interval_s).start()
        try:
            yield
        finally:
            sweeper.stop()

    app = FastAPI(
        title="HarmonyNet transcription service",
        version="1.0",
        description="Solo-piano audio in; MIDI, MusicXML, PDF and JSON out. Upload with POST "
                    "/transcribe, poll GET /status/{job_id}, download GET "
                    "/result/{job_id}/{format}.",
        lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.store, app.state.storage, app.state.config = store, storage, cfg
    app.add_middleware(UploadGate, max_bytes=cfg.max_upload_bytes, token=cfg.token)
    bearer = HTTPBearer(auto_error=False, description="the service token")

    def require_token(cred: Annotated[HTTPAuthorizationCredentials | None,
                                      Depends(bearer)]) -> None:
        if cred is None or not hmac.compare_digest(cred.credentials.encode(),
                                                   cfg.token.encode()):
            raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer ...)",
                                headers={"WWW-Authenticate": "Bearer"})

    guarded = [Depends(require_token)] if cfg.token else []
    auth_errors = (401,) if cfg.token else ()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(exc)}, 422)

    @app.exception_handler(StoreUnavailable)
    async def unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.error("%s", exc)
        return JSONResponse({"detail": "the job store is unavailable; try again later"}, 503)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error; the server log has the details"}, 500)

    async def check_audio(path: Path) -> float:
        """Seconds of audio in `path`, decoded by the loader's ffmpeg; HTTP errors otherwise."""
        from harmonynet_jax import data

        async with decode_slots:
            try:
                audio = await run_in_threadpool(data.load_audio, path, cfg.decode_timeout_s)
            except data.LoaderError as err:
                if str(err).endswith("no audio samples"):
                    raise HTTPException(422, "the file holds no audio samples") from None
                raise HTTPException(415, "not an audio file ffmpeg can decode ("
                                    f"{data.decode_failure_reason(err)})") from None
        seconds = len(audio) / VOCAB.sample_rate
        if seconds == 0:
            raise HTTPException(422, "the file holds no audio samples")
        if cfg.max_audio_minutes and seconds > cfg.max_audio_minutes * 60:
            raise HTTPException(422, f"the recording is {seconds / 60:.1f} min long; this service "
                                     f"takes at most {cfg.max_audio_minutes:g} min")
        return seconds

    @app.post(UPLOAD_PATH, status_code=202, response_model=Submitted, dependencies=guarded,
              responses=errors(*auth_errors, 413, 415, 422, 503),
              summary="Upload a recording; returns the job id")
    async def transcribe(
        file: Annotated[UploadFile, File(description="audio in any format ffmpeg reads")],
        formats: Annotated[str, Form(description="comma list of midi, musicxml, pdf, json",
                                     pattern=FORMATS_PATTERN, max_length=100)] = "midi",
        decoder: Annotated[Literal["tokens", "frames"] | None,
                           Form(description="default: what the model recommends")] = None,
        batch_size: Annotated[int, Form(ge=1, le=64)] = 8,
        title: Annotated[str | None, Form(max_length=200)] = None,
        composer: Annotated[str | None, Form(max_length=200)] = None,
        tempo: Annotated[float | None, Form(ge=10, le=400, description="BPM")] = None,
        time_sig: Annotated[str | None, Form(pattern=r"^[0-9]{1,2}/[0-9]{1,2}$",
                                             description="e.g. 3/4 or 6/8")] = None,
        engraver: Annotated[Literal["auto", "verovio", "lilypond", "musescore"],
                            Form()] = "auto",
    ) -> Submitted:
        try:
            options = JobOptions.parse(formats, decoder, batch_size, title, composer, tempo,
                                       time_sig, engraver)
        except OptionError as err:
            raise HTTPException(422, str(err)) from None
        counts = await run_in_threadpool(store.counts)
        if counts.get(PENDING, 0) >= cfg.max_pending:
            raise HTTPException(503, f"the queue is full ({cfg.max_pending} jobs waiting); "
                                     "try again later")
        filename = clean_filename(file.filename)
        suffix = clean_suffix(filename)
        job = new_job(filename, suffix, options, None)
        staged = staging / f"{job.id}{suffix}"
        try:
            size = await run_in_threadpool(_save, file, staged)
            if size > cfg.max_upload_bytes:
                raise UploadTooLarge(cfg.max_upload_bytes)
            if size == 0:
                raise HTTPException(422, "the uploaded file is empty")
            job.audio_seconds = round(await check_audio(staged), 3)
            await run_in_threadpool(storage.put, job.input_key, staged, move=True)
        finally:
            staged.unlink(missing_ok=True)
        await run_in_threadpool(store.add, job)
        try:
            await run_in_threadpool(dispatch, job.id)
        except Exception as err:
            log.error("could not queue job %s: %s", job.id, err)
            await run_in_threadpool(store.fail, job.id, "could not be queued (broker down)")
            raise HTTPException(503, "the job queue is unavailable; try again later") from None
        log.info("job %s queued: %s (%.1f s audio, %s)", job.id, filename, job.audio_seconds,
                 ",".join(options.formats))
        return Submitted(job_id=job.id, status_url=f"/status/{job.id}")

    @app.get("/status/{job_id}", response_model=JobStatus, dependencies=guarded,
             responses=errors(*auth_errors, 404, 422, 503), summary="State of a job")
    def status(job_id: JobIdParam) -> JobStatus:
        return status_of(_job(store, job_id))

    result_content = {"content": {t: {"schema": {"type": "string", "format": "binary"}}
                                  for t in MEDIA_TYPES.values()},
                      "description": "the file"}

    @app.get("/result/{job_id}/{fmt}", dependencies=guarded, response_class=FileResponse,
             responses={200: result_content, **errors(*auth_errors, 404, 409, 422, 503)},
             summary="Download one result of a finished job")
    def result(job_id: JobIdParam, fmt: Format):
        job = _job(store, job_id)
        if job.state == FAILED:
            raise HTTPException(409, f"the job failed: {job.message}")
        if job.state != DONE:
            raise HTTPException(409, f"the job is {job.state}; poll /status/{job_id}")
        if fmt not in job.options.formats:
            raise HTTPException(404, f"{fmt} was not requested; this job made "
                                     f"{', '.join(job.outputs) or 'nothing'}")
        if fmt not in job.outputs:
            raise HTTPException(404, f"{fmt} was not written: {job.errors.get(fmt, 'unknown')}")
        key, name = result_key(job.id, fmt), download_name(job, fmt)
        path = storage.local_path(key)
        if path is not None:
            if not path.is_file():
                raise HTTPException(404, f"the {fmt} file is gone (expired or deleted)")
            return FileResponse(path, media_type=MEDIA_TYPES[fmt], filename=name)
        try:
            chunks = storage.stream(key)
        except FileNotFoundError:
            raise HTTPException(404, f"the {fmt} file is gone (expired or deleted)") from None
        disposition = f"attachment; filename*=UTF-8''{quote(name)}"
        return StreamingResponse(chunks, media_type=MEDIA_TYPES[fmt],
                                 headers={"Content-Disposition": disposition})

    @app.get("/health", response_model=Health, responses=errors(503),
             summary="Liveness, queue mode and job counts")
    def health() -> Health:
        return Health(status="ok", queue=store.kind, storage=storage.kind,
                      auth=cfg.token is not None, jobs=store.counts())

    page = PAGE.read_text()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        settings = {"auth": cfg.token is not None, "maxUploadMb": cfg.max_upload_mb}
        return HTMLResponse(page.replace("/*SETTINGS*/{}", json.dumps(settings)))

    return app


def _job(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id} (unknown, or deleted after its time to live)")
    return job


def _save(upload: UploadFile, dest: Path) -> int:
    upload.file.seek(0)
    with open(dest, "wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
        return out.tell()

