"""HTTP API: `create_app(model_dir, limits)` gives a FastAPI app that predicts emotions for uploads.

The artefact is loaded (and its hashes checked) once, when the app is created; requests share it.
Endpoints (the OpenAPI spec is at /openapi.json, interactive docs at /docs):

* ``POST /predict``: multipart form with one audio file in the field ``file`` (WAV, FLAC or OGG) and
  an optional text field ``group`` (a speaker/session id: for a model trained with per-speaker
  normalisation, clips sent under one id are standardised by that group's running statistics once
  it holds ``normalize.min_group_size`` clips; ``normalised_by`` says which). Answer: emotion,
  confidence, the seven probabilities, duration_s, group, normalised_by.
* ``POST /predict/batch``: the same with one or more files in the field ``files`` (and an optional
  ``group`` for all of them); a per-file result
  or error for each, in order: one bad file never fails the batch (the batch answers 200 unless the
  request itself is bad: not multipart, malformed, no files, too many files, too large).
* ``GET /health``: liveness and the loaded model's name. ``GET /model``: the model card
  (artifact.json without the file hashes, plus card.md's text).

Status codes (the `detail` field says why; batch items carry the same code in `status`):

====  ==================================================================================
200   prediction made (batch: always, with per-file `error`/`status` for bad files)
413   request body over the limit, a file over `max_upload_bytes`, audio longer than
      `max_duration_s` (checked from the header before decoding), or more than `max_files` files
415   request not multipart/form-data; a file declared with a non-audio content type, or whose
      bytes are not WAV (RIFF/RF64/W64 WAVE), FLAC or OGG
422   malformed multipart body, the file field missing (or a text field instead of a file),
      several files on /predict, corrupt or empty audio, audio with non-finite samples, audio
      shorter than `min_duration_s` (0.1 s)
500   a bug: every known failure above is mapped; anything else is logged and answered as 500
====  ==================================================================================

The body is read at most to the limit (Content-Length is checked first, then the bytes are counted
as they arrive), so an oversized upload is refused without being stored. Decoding, features and the
model run in the threadpool; the model call itself holds a lock (Keras/TF and some sklearn models
are not documented as thread-safe).
"""
from __future__ import annotations

import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import FormData, UploadFile

from ser import EMOTIONS
from ser.artifact import Artifact, load_artifact, read_meta
from ser.audio import AudioError, decode, probe
from ser.speaker_norm import RunningStats

log = logging.getLogger("ser.serve")

ALLOWED_TYPES = {
    "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/x-pn-wav",
    "audio/flac", "audio/x-flac", "audio/ogg", "audio/vorbis", "audio/opus", "application/ogg",
    "application/octet-stream", "",  # clients that do not know the type: the bytes decide
}
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

    def __post_init__(self) -> None:
        if min(self.max_upload_bytes, self.max_duration_s, self.max_files, self.max_batch_bytes, self.max_groups,
               self.max_group_len) <= 0:
            raise ValueError(f"limits must be positive: {self}")
        if not 0 <= self.min_duration_s < self.max_duration_s:
            raise ValueError(f"min_duration_s must be in [0, max_duration_s): {self}")


class Prediction(BaseModel):
    filename: str | None = Field(None, description="the upload's file name")
    emotion: str = Field(description=f"the most probable of {', '.join(EMOTIONS)}")
    confidence: float = Field(description="its probability")
    probabilities: dict[str, float] = Field(description="all seven, summing to 1")
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
    for code, text in ((413, "too large: body, file, duration or number of files over the limit"),
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

Errors (`{"detail": "..."}`): **413** body/file/duration/file count over the limit (see `GET /health`),
**415** not multipart, or a file that is not WAV/FLAC/OGG, **422** malformed multipart, missing field,
corrupt, empty or too short audio. A batch answers 200 with a `status` and `error` per bad file.
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


async def read_form(request: Request, cap: int, max_files: int, too_many: tuple[int, str] | None = None) -> FormData:
    """Parse the multipart body, reading at most `cap` bytes; ApiError 413/415/422 for known failures."""
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
        return await parser.parse()
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


class Predictor:
    """The loaded artefact plus the checks and the lock around it; everything here is synchronous."""

    def __init__(self, artifact: Artifact, limits: Limits):
        self.artifact = artifact
        self.limits = limits
        self.lock = threading.Lock()
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

    def check(self, data: bytes, filename: str | None, content_type: str | None) -> float:
        """Size, type and duration checks from the bytes and the header only; the duration in seconds."""
        name = filename or "upload"
        if len(data) > self.limits.max_upload_bytes:
            raise ApiError(413, f"{name}: {len(data)} bytes is over the limit of {self.limits.max_upload_bytes} bytes")
        ctype = (content_type or "").split(";")[0].strip().lower()
        if ctype not in ALLOWED_TYPES and not ctype.startswith("audio/"):
            raise ApiError(415, f"{name}: content type {ctype!r} is not audio (send WAV, FLAC or OGG)")
        if not data:
            raise ApiError(422, f"{name}: empty file (0 bytes)")
        if sniff(data) is None:
            raise ApiError(415, f"{name}: not WAV, FLAC or OGG audio (unrecognised file signature)")
        try:
            info = probe(io.BytesIO(data))
        except AudioError as exc:
            raise ApiError(422, f"{name}: corrupt or unsupported audio: {_strip(exc)}") from None
        if info.duration_s < self.limits.min_duration_s:
            raise ApiError(422, f"{name}: {info.duration_s:.3f} s of audio is too short "
                                f"(at least {self.limits.min_duration_s:g} s)")
        if info.duration_s > self.limits.max_duration_s:
            raise ApiError(413, f"{name}: {info.duration_s:.1f} s of audio is over the limit of "
                                f"{self.limits.max_duration_s:g} s (split it, e.g. `ser predict --segment`)")
        return info.duration_s

    def decode(self, data: bytes, filename: str | None) -> np.ndarray:
        from ser.predict import audio_options

        try:
            return decode(data, self.artifact.features.sample_rate, name=filename or "upload",
                          min_duration_s=self.limits.min_duration_s, **audio_options(self.artifact))
        except AudioError as exc:
            raise ApiError(422, f"corrupt audio: {exc}") from None
        except (ValueError, MemoryError) as exc:
            raise ApiError(422, f"{filename or 'upload'}: cannot decode ({exc})") from None

    def features(self, audio: np.ndarray) -> np.ndarray:
        from ser.predict import raw_features

        try:
            raw = raw_features(self.artifact, audio)
        except ValueError as exc:
            raise ApiError(422, f"cannot compute features: {exc}") from None
        if not np.isfinite(raw).all():
            raise ApiError(422, "the audio gives non-finite features (extreme sample values)")
        return raw

    def model(self, raw: np.ndarray, group: str | None = None) -> tuple[np.ndarray, bool]:
        """(n, 7) for n raw feature rows, and whether the group's own statistics normalised them.

        With a group id the rows join that group's running statistics first; the scaler, the group
        table and the model all run under the lock."""
        from ser.predict import model_proba

        with self.lock:
            stats = None
            if group is not None:
                stats = self.groups.pop(group, None) or RunningStats()
                self.groups[group] = stats.update(raw)
                while len(self.groups) > self.limits.max_groups:
                    self.groups.popitem(last=False)
            own = stats is not None and self.artifact.scaler.uses_groups(stats.clips)
            x = self.artifact.scaler.transform_with(raw, stats)
            proba = np.asarray(model_proba(self.artifact, x), dtype=np.float64)
        if proba.shape != (len(raw), len(EMOTIONS)) or not np.isfinite(proba).all():
            raise RuntimeError(f"model returned probabilities of shape {proba.shape}")
        return proba, own

    def warmup(self) -> None:
        """One prediction on quiet noise at startup: lazy imports, caches and Keras's compiled function are ready
        before the first request (and a model that cannot predict fails here, not on a client)."""
        noise = np.random.default_rng(0).standard_normal(self.artifact.features.sample_rate).astype(np.float32) * 0.01
        self.model(self.features(noise)[None])

    def one(self, data: bytes, filename: str | None, content_type: str | None, group: str | None) -> Prediction:
        duration = self.check(data, filename, content_type)
        raw = self.features(self.decode(data, filename))
        proba, own = self.model(raw[None], group)
        return self.prediction(proba[0], filename, duration, group, own)

    def batch(self, files: list[tuple[bytes | None, str | None, str | None]], group: str | None = None
              ) -> list[BatchItem]:
        items: list[BatchItem] = []
        good: list[tuple[int, np.ndarray, float]] = []
        for i, (data, filename, ctype) in enumerate(files):
            try:
                if data is None:
                    raise ApiError(422, "a text field named `files`, not a file upload")
                duration = self.check(data, filename, ctype)
                good.append((i, self.features(self.decode(data, filename)), duration))
                items.append(BatchItem(filename=filename, status=200))
            except ApiError as exc:
                items.append(BatchItem(filename=filename, status=exc.status, error=exc.detail))
        if good:
            proba, own = self.model(np.stack([g[1] for g in good]), group)
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
    predictor = Predictor(artifact, limits)
    predictor.warmup()
    started = time.monotonic()

    app = FastAPI(title="ser: speech emotion recognition", description=API_DESCRIPTION, version="1")
    app.state.predictor = predictor
    app.state.limits = limits

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - a bug by definition
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); this is a bug"}, status_code=500)

    @app.post("/predict", response_model=Prediction, responses=_ERRORS,
              openapi_extra=_multipart_body({"file": {"type": "string", "format": "binary"},
                                             "group": {"type": "string", "description": GROUP_DOC}},
                                            ["file"]))
    async def predict(request: Request) -> Prediction:
        """Predict the emotion of one WAV/FLAC/OGG upload (form field `file`)."""
        form = await read_form(request, limits.max_upload_bytes + MULTIPART_OVERHEAD, 1, too_many=(422, ONE_FILE))
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
            data = await _file_bytes(upload, limits.max_upload_bytes)
            return await run_in_threadpool(predictor.one, data, upload.filename, upload.content_type, group)
        finally:
            await form.close()

    @app.post("/predict/batch", response_model=BatchResponse, responses=_ERRORS,
              openapi_extra=_multipart_body({"files": {"type": "array",
                                                       "items": {"type": "string", "format": "binary"}},
                                             "group": {"type": "string", "description": GROUP_DOC}}, ["files"]))
    async def predict_batch(request: Request) -> BatchResponse:
        """Predict each of several uploads (form field `files`, repeated); per-file results and errors."""
        form = await read_form(request, limits.max_batch_bytes, limits.max_files)
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
            items = await run_in_threadpool(predictor.batch, files, group)
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


def serve(model_dir: Path | str, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None,
          log_level: str = "info") -> None:
    """Run the API with uvicorn (blocking) on `host:port` (localhost only unless told otherwise)."""
    import uvicorn

    app = create_app(model_dir, limits)
    uvicorn.run(app, host=host, port=port, log_level=log_level, workers=1)
