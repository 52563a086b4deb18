"""The HTTP API: good uploads, every documented 4xx, batches with bad files, concurrency, never a 500."""
from __future__ import annotations

import io
import socket
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

with warnings.catch_warnings():  # starlette's note that its TestClient will move from httpx to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ser import EMOTIONS
from ser.serve import Limits, create_app, sniff

LIMITS = Limits(max_upload_bytes=300_000, max_duration_s=4.0, max_files=4, max_batch_bytes=1_000_000)


def flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())



@pytest.fixture(scope="module")
def model_dir(svc_model) -> Path:
    return svc_model[1]


@pytest.fixture(scope="module")
def client(model_dir):
    with TestClient(create_app(model_dir, LIMITS), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def clip(tiny_features) -> bytes:
    root = Path(tiny_features[1]["corpora"]["demo"]["root"])
    return next((root / "spk01" / "happy").glob("*.wav")).read_bytes()


@pytest.fixture(scope="module")
def speech(clip) -> np.ndarray:
    """The demo clip as float32 samples at 16 kHz (re-encoded in other formats and rates below)."""
    return sf.read(io.BytesIO(clip), dtype="float32")[0]


def encode(audio: np.ndarray, fmt: str = "WAV", sr: int = 16000, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def noise(seconds: float, sr: int = 16000) -> np.ndarray:
    return (np.random.default_rng(3).standard_normal(int(seconds * sr)) * 0.1).astype(np.float32)


def check_prediction(body: dict) -> None:
    probs = body["probabilities"]
    assert list(probs) == list(EMOTIONS)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    assert body["emotion"] == max(probs, key=probs.get) and body["confidence"] == max(probs.values())


def test_good_upload(client, clip):
    r = client.post("/predict", files={"file": ("happy.wav", clip, "audio/wav")}, data={"group": "spk01"})
    assert r.status_code == 200, r.text
    body = r.json()
    check_prediction(body)
    assert body["filename"] == "happy.wav" and body["group"] == "spk01"
    assert body["duration_s"] == pytest.approx(sf.info(io.BytesIO(clip)).duration)


@pytest.mark.parametrize("fmt,subtype,ctype", [("FLAC", None, "audio/flac"), ("OGG", "VORBIS", "audio/ogg"),
                                               ("WAV", "FLOAT", "application/octet-stream"), ("WAV", "PCM_16", None)])
def test_other_formats_and_rates(client, speech, fmt, subtype, ctype):
    import soxr

    audio = soxr.resample(speech, 16000, 22050)
    data = encode(audio, fmt, 22050, subtype)
    files = {"file": ("clip", data, ctype)} if ctype else {"file": ("clip", data)}
    r = client.post("/predict", files=files)
    assert r.status_code == 200, r.text
    check_prediction(r.json())
    assert r.json()["duration_s"] == pytest.approx(len(audio) / 22050, abs=1e-3) and r.json()["group"] is None


@pytest.mark.parametrize("ctype", ["text/plain", "image/png", "application/json"])
def test_the_bytes_decide_not_the_declared_type(client, clip, ctype):
    """A real WAV declared as text is audio (README: judged by its bytes, not its name)."""
    r = client.post("/predict", files={"file": ("notes.txt", clip, ctype)})
    assert r.status_code == 200, r.text
    check_prediction(r.json())


def test_no_speech_gets_422_not_an_emotion(client):
    t = np.arange(32000) / 16000
    one_hz = io.BytesIO()
    sf.write(one_hz, np.linspace(-0.5, 0.5, 10), 1, format="WAV", subtype="PCM_16")
    cases = {"silence.wav": encode(np.zeros(32000, np.float32)),
             "tone.wav": encode((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)),
             "noise.wav": encode(noise(2.0)),
             "one_hz.wav": one_hz.getvalue()}
    for name, data in cases.items():
        r = client.post("/predict", files={"file": (name, data, "audio/wav")})
        assert r.status_code == 422, (name, r.text)
        assert r.json()["detail"].startswith(f"{name}: no speech detected"), r.text
    assert "1 Hz is under the 8000 Hz floor" in client.post(
        "/predict", files={"file": ("one_hz.wav", cases["one_hz.wav"], "audio/wav")}).json()["detail"]


def raw_upload(filename: bytes, data: bytes, field: bytes = b"file") -> dict:
    """A hand-made multipart body, so the file name reaches the server byte for byte (NUL included)."""
    body = (b"--b\r\nContent-Disposition: form-data; name=\"" + field + b"\"; filename=\"" + filename + b"\"\r\n"
            b"Content-Type: audio/wav\r\n\r\n" + data + b"\r\n--b--\r\n")
    return {"content": body, "headers": {"content-type": "multipart/form-data; boundary=b"}}


def test_file_names_are_sanitised_and_errors_carry_no_object_reprs(client, clip):
    r = client.post("/predict", **raw_upload(b"../../etc/pa\x00ss\x07wd.wav", clip))
    assert r.status_code == 200, r.text
    assert r.json()["filename"] == "passwd.wav"
    r = client.post("/predict", **raw_upload(b"..", clip))
    assert r.json()["filename"] == "upload"
    bad = b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(40)
    r = client.post("/predict", **raw_upload(b"dir/../x\x00.wav", bad))
    detail = r.json()["detail"]
    assert r.status_code == 422 and detail.startswith("x.wav: ") and "object at 0x" not in detail
    assert "\x00" not in detail and "../" not in detail
    r = client.post("/predict/batch", **raw_upload(b"a/../../b\x00.wav", bad, b"files"))
    item = r.json()["results"][0]
    assert item["filename"] == "b.wav" and "object at 0x" not in item["error"]


def _bad_requests(clip: bytes) -> list[tuple[str, dict, int, str]]:
    too_long = encode(noise(5.0))  # refused from the header: what it holds does not matter
    return [
        ("text", {"files": {"file": ("a.txt", b"hello", "text/plain")}}, 415, "signature"),
        ("not audio bytes", {"files": {"file": ("a.wav", b"hello world, no audio", "audio/wav")}}, 415, "signature"),
        ("mp3 bytes", {"files": {"file": ("a.mp3", b"ID3\x04\x00" + bytes(200), "audio/mpeg")}}, 415, "signature"),
        ("corrupt wav", {"files": {"file": ("a.wav", b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(40), "audio/wav")}},
         422, "corrupt"),
        ("corrupt flac", {"files": {"file": ("a.flac", b"fLaC" + bytes(300), "audio/flac")}}, 422, "corrupt"),
        ("truncated wav", {"files": {"file": ("a.wav", clip[:300], "audio/wav")}}, 422, "too short"),
        ("empty file", {"files": {"file": ("a.wav", b"", "audio/wav")}}, 422, "empty"),
        ("too long", {"files": {"file": ("long.wav", too_long, "audio/wav")}}, 413, "over the limit of 4 s"),
        ("too big", {"files": {"file": ("big.wav", clip * 8, "audio/wav")}}, 413, "over the limit"),
        ("no file field", {"files": {"audio": ("a.wav", clip, "audio/wav")}}, 422, "no `file` field"),
        ("text instead of file", {"data": {"file": "not a file"}, "files": {"x": ("x", b"x", "text/plain")}},
         422, "not a file upload"),
        ("two files", {"files": [("file", ("a.wav", clip, "audio/wav"))] * 2}, 422, "send one file"),
        ("json body", {"json": {"file": "x"}}, 415, "multipart/form-data"),
        ("no body", {}, 415, "multipart/form-data"),
        ("malformed multipart", {"content": b"--xyz\r\ngarbage", "headers": {
            "content-type": "multipart/form-data; boundary=abc"}}, 422, "malformed multipart"),
        ("no boundary", {"content": b"whatever", "headers": {"content-type": "multipart/form-data"}},
         422, "boundary"),
    ]


def test_each_bad_input_class_gets_its_status(client, clip):
    for name, kwargs, status, detail in _bad_requests(clip):
        r = client.post("/predict", **kwargs)
        assert r.status_code == status, f"{name}: {r.status_code} {r.text}"
        assert detail in r.json()["detail"], f"{name}: {r.text}"


def test_oversized_body_is_refused_without_reading_it_all(client):
    """At the ASGI level (TestClient buffers bodies): a chunked upload with no Content-Length is cut off."""
    import anyio

    app = client.app
    received, sent = 0, []

    async def receive():
        nonlocal received
        received += 1
        chunk = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
                 if received == 1 else bytes(65536))
        return {"type": "http.request", "body": chunk, "more_body": received < 1000}  # 64 MB if read to the end

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/predict", "raw_path": b"/predict", "root_path": "", "query_string": b"",
             "headers": [(b"content-type", b"multipart/form-data; boundary=b"), (b"host", b"test")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == 413 and b"over the limit" in sent[1]["body"]
    assert received <= 2 + LIMITS.max_upload_bytes // 65536 + 2


def test_batch_reports_per_file_results(client, clip):
    files = [("files", ("good.wav", clip, "audio/wav")), ("files", ("bad.wav", b"junk", "audio/wav")),
             ("files", ("big.wav", clip * 8, "audio/wav")), ("files", ("noise.flac", encode(noise(1), "FLAC"), None))]
    r = client.post("/predict/batch", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["filename"] for i in body["results"]] == ["good.wav", "bad.wav", "big.wav", "noise.flac"]
    assert [i["status"] for i in body["results"]] == [200, 415, 413, 422]
    assert body["ok"] == 1 and body["failed"] == 3 and body["model"] == "svc"
    assert "no speech detected" in body["results"][3]["error"] and body["results"][3]["result"] is None
    good = body["results"][0]["result"]
    check_prediction(good)
    single = client.post("/predict", files={"file": ("good.wav", clip, "audio/wav")}).json()
    assert good["probabilities"] == pytest.approx(single["probabilities"], abs=1e-9)
    assert body["results"][1]["result"] is None and "signature" in body["results"][1]["error"]

    r = client.post("/predict/batch", files=[("files", ("a.wav", clip, "audio/wav"))] * 5)
    assert r.status_code == 413 and "at most 4" in r.json()["detail"]
    r = client.post("/predict/batch", files={"file": ("a.wav", clip, "audio/wav")})
    assert r.status_code == 422 and "no `files` field" in r.json()["detail"]


def test_concurrent_requests_all_succeed(client, clip, speech):
    data = [clip, encode(speech, "WAV", subtype="FLOAT"), encode(speech[: len(speech) // 2 + 4000], "FLAC")]

    def call(i: int) -> dict:
        r = client.post("/predict", files={"file": (f"{i}.wav", data[i % 3], "audio/wav")})
        assert r.status_code == 200, r.text
        return r.json()

    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(call, range(24)))
    for i, body in enumerate(bodies):
        assert body["probabilities"] == pytest.approx(bodies[i % 3]["probabilities"], abs=1e-9)


def test_health_model_and_openapi(client):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["model"] == "svc" and h["limits"]["max_files"] == 4
    m = client.get("/model").json()
    assert m["name"] == "svc" and m["labels"] == list(EMOTIONS) and "files" not in m
    assert m["card"].startswith("# Model card: svc")
    spec = client.get("/openapi.json").json()
    assert {"/predict", "/predict/batch", "/health", "/model"} <= set(spec["paths"])
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["file"] and set(body["properties"]) == {"file", "group", "emotions"}
    assert {"413", "415", "422"} <= set(spec["paths"]["/predict"]["post"]["responses"])


def test_sniff():
    assert sniff(encode(noise(0.1))) == "WAV" and sniff(encode(noise(0.1), "FLAC")) == "FLAC"
    assert sniff(b"OggS....") == "OGG" and sniff(b"ID3...") is None and sniff(b"") is None


HEADERS = [b"", b"RIFF\x24\x00\x00\x00WAVE", b"RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00", b"fLaC", b"OggS"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.sampled_from(HEADERS), tail=st.binary(max_size=2000),
       ctype=st.sampled_from(["audio/wav", "application/octet-stream", "audio/flac", "text/plain", ""]))
def test_random_bytes_never_give_a_500(client, head, tail, ctype):
    r = client.post("/predict", files={"file": ("x", head + tail, ctype)} if ctype else {"file": ("x", head + tail)})
    assert r.status_code in (200, 413, 415, 422), r.text
    assert r.status_code != 200 or sum(r.json()["probabilities"].values()) == pytest.approx(1.0)


def test_keras_model_serves_concurrent_requests(model_dir, tmp_path, clip):
    """Keras under threads (behind the lock): an untrained network with the svc artefact's features and scaler."""
    from ser.artifact import Artifact, load_artifact
    from ser.models import build_model

    svc = load_artifact(model_dir)
    net = build_model({"kind": "keras_mlp", "units": [16]}, seed=1)
    net.build((len(svc.scaler.fallback.mean),))
    folder = Artifact("keras_mlp", net, svc.scaler, svc.features, svc.audio).save(tmp_path / "keras_mlp")
    with TestClient(create_app(folder, LIMITS), raise_server_exceptions=False) as c:
        with ThreadPoolExecutor(6) as pool:
            rs = list(pool.map(lambda _: c.post("/predict", files={"file": ("a.wav", clip, "audio/wav")}), range(12)))
    assert [r.status_code for r in rs] == [200] * 12
    first = rs[0].json()["probabilities"]
    check_prediction(rs[0].json())
    assert all(r.json()["probabilities"] == pytest.approx(first, abs=1e-6) for r in rs)


def test_real_server_on_localhost(model_dir, clip):
    import httpx
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(model_dir, LIMITS), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health", timeout=10).json()["status"] == "ok"
        r = httpx.post(f"{base}/predict", files={"file": ("a.wav", clip, "audio/wav")}, timeout=30)
        assert r.status_code == 200 and r.json()["emotion"] in EMOTIONS
        r = httpx.post(f"{base}/predict", files={"file": ("big.wav", clip * 8, "audio/wav")}, timeout=30)
        assert r.status_code == 413
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
    assert not thread.is_alive()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=1, max_size=3000),
       sr=st.sampled_from([8000, 16000, 44100]))
def test_random_float_wavs_never_give_a_500(client, values, sr):
    data = encode(np.array(values, dtype=np.float32), "WAV", sr, "FLOAT")
    r = client.post("/predict", files={"file": ("x.wav", data, "audio/wav")})
    assert r.status_code in (200, 422), r.text


def test_serve_command_refuses_a_bad_model(tmp_path):
    from typer.testing import CliRunner

    from ser.cli import app

    r = CliRunner().invoke(app, ["serve", "--model", str(tmp_path)])
    assert r.exit_code == 1 and "not a model artefact" in flat(r.output)
