"""The page people use to try the model: `mount_page(app)` adds GET / (the page), /static (its files),
POST /page/analyze (one clip: prediction + waveform + log-mel image + timeline) and GET /report.

Everything is served by the package itself (no CDN, fonts or scripts from elsewhere): the page is
vanilla JS drawing on canvases from the arrays /page/analyze returns; the log-mel spectrogram is a
PNG rendered here with matplotlib. /page/analyze runs the same checks, limits and errors as
POST /predict (it reuses the app's predictor), so a bad file is a readable `detail`, never a trace.
"""
from __future__ import annotations

import base64
import io
from contextlib import nullcontext
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile

from ser import EMOTIONS

STATIC = Path(__file__).resolve().parent / "static"
FORM_OVERHEAD = 64 * 1024  # headers, boundaries and the group field on top of the clip's bytes
ONE_CLIP = "choose one audio file (WAV, FLAC or OGG) or record a clip"
WAVEFORM_POINTS = 800     # min/max pairs sent for the waveform drawing
MAX_SEGMENTS = 240        # timeline windows at most (a 60-s clip with a 1-s hop needs 58)
NO_REPORT = ("<!doctype html><meta charset=utf-8><title>no run report</title>"
             "<p>No run report here yet: run <code>ser report</code> (or <code>dvc repro report</code>) "
             "to write reports/index.html (in the folder where <code>ser serve</code> runs), then reload this page.</p>")


def waveform(audio: np.ndarray, sample_rate: int, points: int = WAVEFORM_POINTS) -> dict[str, Any]:
    """Min and max of the signal in `points` equal spans (fewer for a short clip): enough to draw it."""
    n = len(audio)
    points = max(1, min(points, n))
    edges = np.linspace(0, n, points + 1).astype(int)
    lo = np.minimum.reduceat(audio, edges[:-1])
    hi = np.maximum.reduceat(audio, edges[:-1])
    return {"min": np.round(lo, 4).tolist(), "max": np.round(hi, 4).tolist(),
            "duration_s": round(n / sample_rate, 6), "peak": round(float(np.abs(audio).max(initial=0.0)), 6)}


def logmel_png(audio: np.ndarray, cfg: Any) -> str:
    """The clip's log-mel spectrogram (the model's own analysis: same STFT, mel bands and dB) as a PNG data URL."""
    from matplotlib.figure import Figure

    from ser.features import _analyse

    logmel = _analyse(audio, cfg)[3]
    seconds = len(audio) / cfg.sample_rate
    fig = Figure(figsize=(8, 2.4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(logmel, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, logmel.shape[0]))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel band")
    fig.colorbar(im, ax=ax, label="dB", pad=0.01)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def timeline(predictor: Any, audio: np.ndarray, window_s: float, hop_s: float) -> dict[str, Any] | None:
    """Emotions over time (`ser predict --segment`) for a clip longer than the window, else None."""
    from ser.predict import PROB_COLUMNS, predict_segments

    artifact = predictor.artifact
    sr = artifact.features.sample_rate
    if len(audio) <= int(round(window_s * sr)):
        return None
    hop_s = max(hop_s, (len(audio) / sr - window_s) / (MAX_SEGMENTS - 1))
    with getattr(predictor, "lock", None) or nullcontext():
        df = predict_segments(artifact, audio, window_s, hop_s)
    return {"window_s": window_s, "hop_s": round(hop_s, 6), "segments": [segment(r, PROB_COLUMNS)
                                                                       for r in df.to_dict("records")]}


def segment(row: dict[str, Any], prob_columns: list[str]) -> dict[str, Any]:
    """One timeline window for the page; a window the model gave no emotion (no speech in it) has None."""
    scored = isinstance(row.get("emotion"), str)
    return {"start_s": float(row["start_s"]), "end_s": float(row["end_s"]),
            "emotion": row["emotion"] if scored else None,
            "confidence": float(row["confidence"]) if scored else None,
            "probabilities": {e: float(row[c]) for e, c in zip(EMOTIONS, prob_columns)} if scored else None}


def analyze(predictor: Any, data: bytes, filename: str | None, content_type: str | None, group: str | None,
            window_s: float, hop_s: float) -> dict[str, Any]:
    """Everything the page shows for one clip; the prediction itself is exactly POST /predict's (its checks,
    limits and errors come first, so anything that reaches the drawings has decoded once already)."""
    from ser.audio import decode

    prediction = predictor.one(data, filename, content_type, group)
    artifact = predictor.artifact
    sr = artifact.features.sample_rate
    audio = decode(data, sr, name=filename or "upload")  # as heard: no trimming or normalisation
    scaler = artifact.scaler
    clips = None
    if group is not None:
        stats = getattr(predictor, "groups", {}).get(group)
        clips = getattr(stats, "clips", None)
    return {
        "prediction": prediction.model_dump(),
        "normalisation": {"mode": scaler.mode, "min_group_size": scaler.min_group_size,
                          "group_clips": clips, "by_group": prediction.normalised_by == "group"},
        "waveform": waveform(audio, sr),
        "spectrogram": logmel_png(audio, artifact.features),
        "timeline": timeline(predictor, audio, window_s, hop_s),
    }


def mount_page(app: FastAPI, read_form: Callable[..., Awaitable[Any]], api_error: type[Exception],
               report: Path | str | None = "reports/index.html", window_s: float | None = None,
               hop_s: float | None = None) -> FastAPI:
    """Add the page's routes to an API made by `ser.serve.create_app` (it needs `app.state.predictor`).

    `read_form` and `api_error` are the API's own multipart reader and error (passed in, so this module
    does not import ser.serve, which imports it): the page answers with the API's limits and messages.
    `report`: the run report served at /report (read on each request, so a rebuilt report shows).
    `window_s`/`hop_s`: the timeline's windows (default: `ser listen`'s, 3 s every 1 s).
    """
    from ser.stream import DEFAULTS

    window = float(window_s or DEFAULTS["window_s"])
    hop = float(hop_s or DEFAULTS["hop_s"])
    report_path = Path(report).resolve() if report else None
    index = (STATIC / "index.html").read_text(encoding="utf-8")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(index)

    @app.get("/report", include_in_schema=False, response_model=None)
    async def run_report() -> FileResponse | HTMLResponse:
        if report_path is not None and report_path.is_file():
            return FileResponse(report_path, media_type="text/html")
        return HTMLResponse(NO_REPORT, status_code=404)

    @app.post("/page/analyze", include_in_schema=False)
    async def page_analyze(request: Request) -> dict[str, Any]:
        predictor = request.app.state.predictor
        limits = predictor.limits
        form = await read_form(request, limits.max_upload_bytes + FORM_OVERHEAD, 1, too_many=(422, ONE_CLIP))
        try:
            files = form.getlist("file")
            if len(files) != 1 or not isinstance(files[0], UploadFile):
                raise api_error(422, ONE_CLIP)
            upload = files[0]
            group = predictor.group_id(form.get("group"))
            data = await upload.read(limits.max_upload_bytes + 1)
            return await run_in_threadpool(analyze, predictor, data, upload.filename, upload.content_type, group,
                                           window, hop)
        finally:
            await form.close()

    return app
