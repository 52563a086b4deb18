"""HTTP API: `create_app(model_dir, limits)` gives a FastAPI app that predicts emotions for uploads.

The artefact is loaded (and its hashes checked) once, when the app is created; requests share it.
Endpoints (the OpenAPI spec is at /openapi.json, interactive docs at /docs):

* ``POST /predict``: multipart form with one audio file in the field ``file`` (WAV, FLAC or OGG) and
  an optional text field ``group`` (a speaker/session id: for a model trained with per-speaker
  normalisation, clips sent under one id are standardised by that group's running statistics once
  it holds ``normalize.min_group_size`` clips; ``normalised_by`` says which) and an optional text field
  ``emotions`` ("angry,happy,neutral,sad": predict only these; the other probabilities are 0 and the
  rest renormalised, as `ser predict --emotions`). Answer: emotion,
  confidence, the seven probabilities, duration_s, group, normalised_by.
* ``POST /predict/batch``: the same with one or more files in the field ``files`` (and an optional
  ``group`` and ``emotions`` for all of them); a per-file result
  or error for each, in order: one bad file never fails the batch (the batch answers 200 unless the
  request itself is bad: not multipart, malformed, no files, too many files, too large).
* ``GET /health``: liveness and the loaded model's name. ``GET /model``: the model card
  (artifact.json without the file hashes, plus card.md's text).

Status codes (the `detail` field says why; batch items carry the same code in `status`):

====  ==================================================================================
200   prediction made (batch: always, with per-file `error`/`status` for bad files)
408   the body did not arrive within `request_timeout_s` (a slow client; the server also closes
      any connection whose request is not complete by then)
413   request body over the limit, a file over `max_upload_bytes`, audio longer than
      `max_duration_s` (checked from the header before decoding), or more than `max_files` files
415   request not multipart/form-data; a file whose bytes are not WAV (RIFF/RF64/W64 WAVE), FLAC
      or OGG (the bytes decide: a declared content type is neither trusted nor required)
422   malformed multipart body, the file field missing (or a text field instead of a file),
      several files on /predict, corrupt or empty audio, audio with non-finite samples, audio
      shorter than `min_duration_s` (0.1 s); "no speech detected": a sample rate under 8 kHz, or
      audio without enough voice (silence, a tone, noise: see ser.vad) gets no emotion
500   a bug: every known failure above is mapped; anything else is logged and answered as 500
====  ==================================================================================

File names are echoed sanitised (last path part, no control characters, at most 128 characters) and
error messages carry no Python object reprs.

The body is read at most to the limit (Content-Length is checked first, then the bytes are counted
as they arrive), so an oversized upload is refused without being stored. Decoding, features and the
model run in the threadpool on the artefact's shared `ser.predictor.Predictor` (the same object
`ser predict` and `ser listen` use), whose model call holds a lock (Keras/TF and some sklearn models
are not documented as thread-safe).
"""
from __future__ import annotations

import io
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import FormData, UploadFile

from ser import EMOTIONS
from ser.artifact import Artifact, load_artifact, read_meta
from ser.audio import AudioError, decode, probe
from ser.params import parse_emotions
from ser.predictor import Predictor
from ser.speaker_norm import RunningStats
from ser.vad import NoSpeech, check_rate

log = logging.getLogger("ser.serve")

EMOTIONS_DOC = (f"optional comma-separated subset of {','.join(EMOTIONS)}: predict only these (the others get "
                "probability 0, the rest is renormalised); an unknown name is refused with 422")
GROUP_DOC = ("optional id of one speaker (or session): clips sent under one id are normalised by their own running "
             "statistics once the group holds normalize.min_group_size clips, for a model trained per speaker")
ONE_FILE = "send one file to /predict (use /predict/batch with field `files` for several)"
MULTIPART_OVERHEAD = 64 * 1024  # headers, boundaries and the group field on top of the file bytes


@dataclass(frozen=True)
class Limits:
    """What one request may carry."""

    max_upload_bytes: int = 10 * 1024 * 1024  # per file
    max_duration_s: float = 60.0               # per file, from its header
    max_files: int = 32                        # per batch
    max_batch_bytes: int = 64 * 1024 * 1024    # a whole batch request body
    min_duration_s: float = 0.1                # shorter audio is refused (422), as ingest quarantines it
    max_groups: int = 1000                     # speaker groups remembered; the least recently used goes first
    max_group_len: int = 128                   # characters in a group id
    request_timeout_s: float = 30.0            # a request's headers and body must arrive within this (else closed)
    keep_alive_s: int = 5                      # an idle keep-alive connection is closed after this
    max_connections: int = 64                  # open connections and requests at once; more get 503

    def __post_init__(self) -> None:
        if min(self.max_upload_bytes, self.max_duration_s, self.max_files, self.max_batch_bytes, self.max_groups,
               self.max_group_len, self.request_timeout_s, self.keep_alive_s, self.max_connections) <= 0:
            raise ValueError(f"limits must be positive: {self}")
        if not 0 <= self.min_duration_s < self.max_duration_s:
            raise ValueError(f"min_duration_s must be in [0, max_duration_s): {self}")


class Prediction(BaseModel):
    filename: str | None = Field(None, description="the upload's file name")
    emotion: str = Field(description=f"the most probable of {', '.join(EMOTIONS)}")
    confidence: float = Field(description="its probability")
    probabilities: dict[str, float] = Field(description="all seven, summing to 1 (0 outside the `emotions` field)")
    duration_s: float = Field(description="audio duration in seconds (before any trimming)")
    group: str | None = Field(None, description="the `group` form field: clips sent under one id share a voice")
    normalised_by: str = Field("global", description="`group`: standardised by the group's own statistics (a model "
                                                     "trained per speaker, once the group holds enough clips); "
                                                     "`global`: by the training set's")


class BatchItem(BaseModel):
    filename: str | None = None
    status: int = Field(description="200, or the code this file alone would have got")
    result: Prediction | None = None
    error: str | None = None


class BatchResponse(BaseModel):
    model: str
    results: list[BatchItem]
    ok: int
    failed: int


class Health(BaseModel):
    status: str
    model: str
    kind: str
    uptime_s: float
    limits: dict[str, int | float]


class ApiError(Exception):
    """A known failure with its HTTP status."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _multipart_body(fields: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "properties": fields, "required": required}}}}}


_ERRORS = {code: {"description": text, "content": {"application/json": {"schema": {
    "type": "object", "properties": {"detail": {"type": "string"}}}}}}
    for code, text in ((408, "the request body did not arrive within request_timeout_s"),
                       (413, "too large: body, file, duration or number of files over the limit"),
                       (415, "not multipart, or a file that is not WAV/FLAC/OGG audio"),
                       (422, "malformed multipart, missing file field, or corrupt audio"))}


def sniff(data: bytes) -> str | None:
    """The container by its magic bytes: WAV, FLAC or OGG, else None."""
    if len(data) >= 12 and data[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and data[8:12] == b"WAVE":
        return "WAV"
    if data[:4] == b"riff" and len(data) >= 16:  # Sony Wave64
        return "WAV"
    if data[:4] == b"fLaC":
        return "FLAC"
    if data[:4] == b"OggS":
        return "OGG"
    return None


API_DESCRIPTION = """Emotion (angry, disgust, fear, happy, neutral, sad, surprise) of speech recordings.

* `POST /predict`: one WAV/FLAC/OGG file in the multipart field `file` (+ optional text field `group`:
  one speaker's clips sent under one id are normalised by that speaker's statistics once there are enough).
* `POST /predict/batch`: several files in the repeated field `files`; per-file results and errors.
* Both take an optional text field `emotions` (e.g. `angry,happy,neutral,sad`): predict only these; the other
  probabilities are 0 and the rest is renormalised. An unknown emotion name is refused with 422.

Errors (`{"detail": "..."}`): **413** body/file/duration/file count over the limit (see `GET /health`),
**415** not multipart, or a file whose bytes are not WAV/FLAC/OGG, **422** malformed multipart, missing field,
corrupt, empty or too short audio, or no speech detected (silence, a tone, noise, a sample rate under 8 kHz). A batch answers 200 with a `status` and `error` per bad file.
"""


class _TooLarge(Exception):
    pass


async def _capped(request: Request, cap: int) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            raise _TooLarge
        yield chunk


async def read_form(request: Request, cap: int, max_files: int, too_many: tuple[int, str] | None = None,
                    timeout_s: float | None = None) -> FormData:
    """Parse the multipart body, reading at most `cap` bytes within `timeout_s`; ApiError 408/413/415/422 for known
    failures."""
    from starlette.formparsers import MultiPartException, MultiPartParser

    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(415, f"send multipart/form-data (got content type {content_type or 'none'!r})")
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > cap:
                raise ApiError(413, f"request body of {int(length)} bytes is over the limit of {cap} bytes")
        except ValueError:
            raise ApiError(422, f"bad Content-Length {length!r}") from None
    parser = MultiPartParser(request.headers, _capped(request, cap), max_files=max_files + 1, max_fields=16,
                             max_part_size=64 * 1024)
    try:
        if timeout_s is None:
            return await parser.parse()
        with anyio.fail_after(timeout_s):
            return await parser.parse()
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {timeout_s:g} s") from None
    except _TooLarge:
        raise ApiError(413, f"request body is over the limit of {cap} bytes") from None
    except MultiPartException as exc:
        if "Too many files" in exc.message:
            status, detail = too_many or (413, f"too many files: at most {max_files} per request")
            raise ApiError(status, detail) from None
        raise ApiError(422, f"malformed multipart body: {exc.message}") from None
    except Exception as exc:  # python-multipart's own parse errors, a client that hung up mid-body
        if type(exc).__name__ == "ClientDisconnect":
            raise ApiError(422, "the client disconnected before the body was complete") from None
        raise ApiError(422, f"malformed multipart body ({type(exc).__name__}: {exc})") from None


class ApiPredictor:
    """The HTTP checks (size, type by the bytes, duration, speech) in front of the artefact's shared
    `ser.predictor.Predictor` (the same warm model, caches and lock as `ser predict` and `ser listen`),
    plus the API's per-client group statistics; everything here is synchronous."""

    def __init__(self, artifact: Artifact, limits: Limits):
        self.artifact = artifact
        self.core = Predictor.of(artifact)
        self.limits = limits
        self.lock = threading.Lock()  # the group table
        # per group id, running statistics of the raw features of every clip sent under it (LRU-bounded)
        self.groups: OrderedDict[str, RunningStats] = OrderedDict()

    def group_id(self, value: Any) -> str | None:
        """The `group` form field: None when absent or empty; 422 when it is not short text."""
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ApiError(422, "the `group` field must be text (an id for one speaker's clips), not a file")
        if len(value) > self.limits.max_group_len:
            raise ApiError(422, f"the `group` id is {len(value)} characters; at most {self.limits.max_group_len}")
        return value

    @staticmethod
    def emotions(value: Any) -> tuple[str, ...] | None:
        """The `emotions` form field: None when absent or empty; 422 naming an unknown emotion."""
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ApiError(422, "the `emotions` field must be text (e.g. angry,happy,neutral,sad), not a file")
        try:
            return parse_emotions(value)
        except ValueError as exc:
            raise ApiError(422, f"the `emotions` field: {exc}") from None

    def check(self, data: bytes, name: str) -> float:
        """Size, container (by the bytes: the declared content type is not trusted either way), sample rate and
        duration from the header only; the duration in seconds."""
        if len(data) > self.limits.max_upload_bytes:
            raise ApiError(413, f"{name}: {len(data)} bytes is over the limit of {self.limits.max_upload_bytes} bytes")
        if not data:
            raise ApiError(422, f"{name}: empty file (0 bytes)")
        if sniff(data) is None:
            raise ApiError(415, f"{name}: not WAV, FLAC or OGG audio (unrecognised file signature)")
        try:
            info = probe(io.BytesIO(data))
        except AudioError as exc:
            raise ApiError(422, f"{name}: corrupt or unsupported audio: {_strip(exc)}") from None
        try:
            check_rate(info.sample_rate, self.core.gate)
        except NoSpeech as exc:
            raise ApiError(422, f"{name}: {exc}") from None
        if info.duration_s < self.limits.min_duration_s:
            raise ApiError(422, f"{name}: {info.duration_s:.3f} s of audio is too short "
                                f"(at least {self.limits.min_duration_s:g} s)")
        if info.duration_s > self.limits.max_duration_s:
            raise ApiError(413, f"{name}: {info.duration_s:.1f} s of audio is over the limit of "
                                f"{self.limits.max_duration_s:g} s (split it, e.g. `ser predict --segment`)")
        return info.duration_s

    def decode(self, data: bytes, name: str) -> np.ndarray:
        try:
            return self.core.decode(data, name, min_duration_s=self.limits.min_duration_s)
        except AudioError as exc:
            raise ApiError(422, f"corrupt audio: {exc}") from None
        except (ValueError, MemoryError) as exc:
            raise ApiError(422, f"{name}: cannot decode ({exc})") from None

    def features(self, audio: np.ndarray, name: str = "upload") -> np.ndarray:
        """422 "no speech detected" for silence, tones and noise; else the raw features."""
        try:
            self.core.speech(audio)
        except NoSpeech as exc:
            raise ApiError(422, f"{name}: {exc}") from None
        try:
            return self.core.raw(audio)
        except ValueError as exc:
            raise ApiError(422, f"{name}: cannot compute features: {exc}") from None

    def model(self, raw: np.ndarray, group: str | None = None,
              emotions: tuple[str, ...] | None = None) -> tuple[np.ndarray, bool]:
        """(n, 7) for n raw feature rows (restricted to `emotions`), and whether the group's own statistics
        normalised them.

        With a group id the rows join that group's running statistics first (under the group lock)."""
        try:
            if group is None:
                return self.core.proba(raw, emotions=emotions)
            with self.lock:  # the group's statistics must not change between its update and its use
                stats = self.groups.pop(group, None) or RunningStats()
                self.groups[group] = stats.update(raw)
                while len(self.groups) > self.limits.max_groups:
                    self.groups.popitem(last=False)
                return self.core.proba(raw, stats, emotions)
        except ValueError as exc:  # the model's output has the wrong shape: a bug, answered 500
            raise RuntimeError(str(exc)) from None

    def warmup(self) -> None:
        """The shared predictor's warm-up (once per process and artefact): lazy imports, caches and Keras's
        compiled function are ready before the first request, and a model that cannot predict fails here."""
        self.core.warmup()

    def one(self, data: bytes, filename: str | None, content_type: str | None, group: str | None,
            emotions: tuple[str, ...] | None = None) -> Prediction:
        name = safe_name(filename)
        duration = self.check(data, name)
        raw = self.features(self.decode(data, name), name)
        proba, own = self.model(raw[None], group, emotions)
        return self.prediction(proba[0], name, duration, group, own)

    def batch(self, files: list[tuple[bytes | None, str | None, str | None]], group: str | None = None,
              emotions: tuple[str, ...] | None = None) -> list[BatchItem]:
        items: list[BatchItem] = []
        good: list[tuple[int, np.ndarray, float]] = []
        for i, (data, filename, ctype) in enumerate(files):
            name = safe_name(filename)
            try:
                if data is None:
                    raise ApiError(422, "a text field named `files`, not a file upload")
                duration = self.check(data, name)
                good.append((i, self.features(self.decode(data, name), name), duration))
                items.append(BatchItem(filename=name if filename is not None else None, status=200))
            except ApiError as exc:
                items.append(BatchItem(filename=name if filename is not None else None, status=exc.status,
                                       error=clean_detail(exc.detail)))
        if good:
            proba, own = self.model(np.stack([g[1] for g in good]), group, emotions)
            for (i, _, duration), p in zip(good, proba):
                items[i].result = self.prediction(p, items[i].filename, duration, group, own)
        return items

    @staticmethod
    def prediction(proba: np.ndarray, filename: str | None, duration: float, group: str | None,
                   own: bool = False) -> Prediction:
        return Prediction(filename=filename, emotion=EMOTIONS[int(proba.argmax())], confidence=float(proba.max()),
                          probabilities={e: float(p) for e, p in zip(EMOTIONS, proba)},
                          duration_s=round(float(duration), 6), group=group,
                          normalised_by="group" if own else "global")


_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def safe_name(filename: str | None, limit: int = 128) -> str:
    """A client's file name fit to echo: the last path part, no control characters (NUL, newlines), at most
    `limit` characters; "upload" when nothing is left."""
    name = _UNSAFE.sub("", str(filename or "")).replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in ("", ".", ".."):
        return "upload"
    return name if len(name) <= limit else name[:limit - 3] + "..."


def clean_detail(text: str) -> str:
    """An error message without Python object reprs (`<_io.BytesIO object at 0x7f...>`) or control characters."""
    return _UNSAFE.sub("", _OBJECT_REPR.sub("the upload", text))


def _strip(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


async def _file_bytes(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes, reading at most `limit + 1` (so an oversize file is detected, never read whole)."""
    data = await upload.read(limit + 1)
    return data


def create_app(model_dir: Path | str | None = None, limits: Limits | None = None,
               artifact: Artifact | None = None) -> FastAPI:
    """The API for the artefact in `model_dir` (or an already loaded `artifact`), loaded once, here."""
    if artifact is None:
        if model_dir is None:
            raise ValueError("create_app needs model_dir or artifact")
        artifact = load_artifact(model_dir)
    limits = limits or Limits()
    meta: dict[str, Any] = {}
    card = ""
    if model_dir is not None:
        meta = {k: v for k, v in read_meta(model_dir).items() if k != "files"}
        card_path = Path(model_dir) / "card.md"
        card = card_path.read_text(encoding="utf-8") if card_path.is_file() else ""
    else:
        from ser.artifact import model_card

        meta = {"name": artifact.name, "kind": artifact.model.kind, "framework": artifact.model.framework,
                "input": artifact.model.input, "labels": list(EMOTIONS), "feature_params": artifact.features.to_dict(),
                "feature_hash": artifact.features.config_hash(), "audio": artifact.audio, "info": artifact.info}
        card = model_card(artifact)
    predictor = ApiPredictor(artifact, limits)
    predictor.warmup()
    started = time.monotonic()

    app = FastAPI(title="ser: speech emotion recognition", description=API_DESCRIPTION, version="1")
    app.state.predictor = predictor
    app.state.limits = limits

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": clean_detail(exc.detail)}, status_code=exc.status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - a bug by definition
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); this is a bug"}, status_code=500)

    @app.post("/predict", response_model=Prediction, responses=_ERRORS,
              openapi_extra=_multipart_body({"file": {"type": "string", "format": "binary"},
                                             "group": {"type": "string", "description": GROUP_DOC},
                                             "emotions": {"type": "string", "description": EMOTIONS_DOC}},
                                            ["file"]))
    async def predict(request: Request) -> Prediction:
        """Predict the emotion of one WAV/FLAC/OGG upload (form field `file`)."""
        form = await read_form(request, limits.max_upload_bytes + MULTIPART_OVERHEAD, 1, too_many=(422, ONE_FILE),
                               timeout_s=limits.request_timeout_s)
        try:
            files = form.getlist("file")
            if not files:
                raise ApiError(422, "no `file` field in the form: upload the audio as multipart field `file`")
            if len(files) > 1:
                raise ApiError(422, ONE_FILE)
            upload = files[0]
            if not isinstance(upload, UploadFile):
                raise ApiError(422, "the `file` field is text, not a file upload")
            group = predictor.group_id(form.get("group"))
            emotions = predictor.emotions(form.get("emotions"))
            data = await _file_bytes(upload, limits.max_upload_bytes)
            return await run_in_threadpool(predictor.one, data, upload.filename, upload.content_type, group, emotions)
        finally:
            await form.close()

    @app.post("/predict/batch", response_model=BatchResponse, responses=_ERRORS,
              openapi_extra=_multipart_body({"files": {"type": "array",
                                                       "items": {"type": "string", "format": "binary"}},
                                             "group": {"type": "string", "description": GROUP_DOC},
                                             "emotions": {"type": "string", "description": EMOTIONS_DOC}}, ["files"]))
    async def predict_batch(request: Request) -> BatchResponse:
        """Predict each of several uploads (form field `files`, repeated); per-file results and errors."""
        form = await read_form(request, limits.max_batch_bytes, limits.max_files, timeout_s=limits.request_timeout_s)
        try:
            uploads = form.getlist("files")
            if not uploads:
                raise ApiError(422, "no `files` field in the form: upload each file as multipart field `files`")
            if len(uploads) > limits.max_files:
                raise ApiError(413, f"{len(uploads)} files: at most {limits.max_files} per batch")
            files: list[tuple[bytes | None, str | None, str | None]] = []
            for up in uploads:
                if isinstance(up, UploadFile):
                    files.append((await _file_bytes(up, limits.max_upload_bytes), up.filename, up.content_type))
                else:
                    files.append((None, None, None))  # a text field named `files`: refused per item (422)
            group = predictor.group_id(form.get("group"))
            emotions = predictor.emotions(form.get("emotions"))
            items = await run_in_threadpool(predictor.batch, files, group, emotions)
            ok = sum(1 for i in items if i.status == 200)
            return BatchResponse(model=artifact.name, results=items, ok=ok, failed=len(items) - ok)
        finally:
            await form.close()

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        """Liveness: the model is loaded and answering."""
        return Health(status="ok", model=artifact.name, kind=artifact.model.kind,
                      uptime_s=round(time.monotonic() - started, 3),
                      limits=asdict(limits))

    @app.get("/model")
    async def model_info() -> dict[str, Any]:
        """The model card: artifact.json (without file hashes) and card.md's Markdown."""
        return {**meta, "card": card}

    from ser.web import mount_page  # the page for people: GET /, /static, /page/analyze, /report
    mount_page(app, read_form, ApiError)
    return app


def deadline_protocol(request_timeout_s: float) -> type:
    """uvicorn's h11 protocol with a per-request deadline: a connection whose request (headers and body) has not
    been answered `request_timeout_s` after it opened, or after the previous response, is closed. uvicorn alone
    never cuts off a client that trickles bytes (its keep-alive timer stops at the first byte), so a handful of
    1-byte/s clients could hold every connection slot."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DeadlineH11Protocol(H11Protocol):
        def connection_made(self, transport):  # type: ignore[no-untyped-def]
            super().connection_made(transport)
            self._deadline = None
            self._arm()

        def _arm(self) -> None:
            if getattr(self, "_deadline", None) is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(request_timeout_s, self._expire)

        def _expire(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and self.cycle.response_started and not self.cycle.response_complete:
                self._arm()  # the answer is on its way: give it another period
                return
            log.info("closing a connection from %s: no complete request within %g s", self.client, request_timeout_s)
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True
                self.cycle.message_event.set()
            self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc):  # type: ignore[no-untyped-def]
            if getattr(self, "_deadline", None) is not None:
                self._deadline.cancel()
                self._deadline = None
            super().connection_lost(exc)

    return DeadlineH11Protocol


def server_config(app: FastAPI, limits: Limits, host: str = "127.0.0.1", port: int = 8000,
                  log_level: str = "info") -> Any:
    """The uvicorn.Config that `serve` runs: one worker, keep-alive, connection cap and per-request deadline from
    `limits` (tests and bench/serve.py start the same server)."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level=log_level, workers=1,
                          http=deadline_protocol(limits.request_timeout_s),
                          timeout_keep_alive=int(limits.keep_alive_s), limit_concurrency=int(limits.max_connections))


def serve(model_dir: Path | str, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None,
          log_level: str = "info") -> None:
    """Run the API with uvicorn (blocking) on `host:port` (localhost only unless told otherwise)."""
    import uvicorn

    limits = limits or Limits()
    uvicorn.Server(server_config(create_app(model_dir, limits), limits, host, port, log_level)).run()
