"""Slow and greedy clients against a real uvicorn on 127.0.0.1: trickling clients are cut off at the request
deadline while others are served, idle keep-alive connections close, and the connection cap answers 503."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from ser.serve import Limits, create_app, server_config

LIMITS = Limits(max_upload_bytes=300_000, max_duration_s=4.0, max_files=4, max_batch_bytes=1_000_000,
                request_timeout_s=2.0, keep_alive_s=1, max_connections=8)


@pytest.fixture(scope="module")
def clip(tiny_features) -> bytes:
    root = Path(tiny_features[1]["corpora"]["demo"]["root"])
    return next((root / "spk01" / "happy").glob("*.wav")).read_bytes()


@contextmanager
def running(app, limits: Limits):
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(server_config(app, limits, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def trickle(port: int, head: bytes, results: list, stop_after_s: float = 10.0) -> None:
    """Send `head`, then one byte every 0.25 s; record how long the server kept the connection open."""
    start = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=1)
    answer = b""
    try:
        s.sendall(head)
        while time.monotonic() - start < stop_after_s:  # bounded: never more than stop_after_s
            try:
                s.sendall(b"x")
            except OSError:
                break
            try:
                s.settimeout(0.25)
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                break
    finally:
        s.close()
        results.append((time.monotonic() - start, answer))


def test_slow_clients_are_dropped_while_others_are_served(svc_model, clip):
    import httpx

    app = create_app(svc_model[1], LIMITS)
    body_head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                 b"Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; "
                 b"filename=\"a.wav\"\r\n\r\n")
    header_head = b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Slow: "  # headers never finish
    with running(app, LIMITS) as port:
        results: list = []
        slow = [threading.Thread(target=trickle, args=(port, head, results))
                for head in (body_head, body_head, header_head, header_head)]
        for t in slow:
            t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        r = httpx.post(f"http://127.0.0.1:{port}/predict", files={"file": ("a.wav", clip, "audio/wav")}, timeout=30)
        served_in = time.monotonic() - t0
        assert r.status_code == 200, r.text
        for t in slow:
            t.join(timeout=15)
        assert len(results) == 4
        for held, answer in results:
            # cut off at the 2 s deadline (not the 10 s the client would have gone on for)
            assert held < 5.0, (held, answer)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
        assert served_in < 5.0
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200


def test_idle_keep_alive_closes_and_the_connection_cap_answers_503(svc_model):
    limits = Limits(request_timeout_s=3.0, keep_alive_s=1, max_connections=3)
    app = create_app(svc_model[1], limits)
    with running(app, limits) as port:
        # keep-alive: after one answered request an idle connection is closed about keep_alive_s later
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < int(
                answer.split(b"content-length: ")[1].split(b"\r\n")[0]):
            answer += s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        assert s.recv(4096) == b""  # closed by the server
        assert time.monotonic() - t0 < 3.0
        s.close()
        # the cap (uvicorn counts the asking connection too): two connections still sending their headers,
        # so the third connection's request is one too many
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        for h in held:
            h.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.3)
        third = socket.create_connection(("127.0.0.1", port), timeout=5)
        third.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert third.recv(4096).startswith(b"HTTP/1.1 503")
        third.close()
        for h in held:
            h.close()


def test_body_deadline_at_the_asgi_level(svc_model):
    """Behind any server: a body that does not arrive within request_timeout_s is answered 408."""
    import anyio

    app = create_app(svc_model[1], Limits(request_timeout_s=0.5))
    sent, calls = [], 0

    async def receive():
        nonlocal calls
        calls += 1
        if calls > 1:
            await anyio.sleep(0.3)
        return {"type": "http.request", "body": b"--b\r\n" if calls == 1 else b"x", "more_body": calls < 50}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/predict", "raw_path": b"/predict", "root_path": "", "query_string": b"",
             "headers": [(b"content-type", b"multipart/form-data; boundary=b"), (b"host", b"test")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    t0 = time.monotonic()
    anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == 408 and b"within 0.5 s" in sent[1]["body"]
    assert time.monotonic() - t0 < 3.0 and calls < 10
