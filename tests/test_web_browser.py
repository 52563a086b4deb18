"""The page and the run report in a real headless Chromium (the system's, driven by Playwright).

Skipped with one line when there is no Chromium (`make browser` installs Debian's as root). Each test
keeps a screenshot under its pytest tmp dir; with SER_SCREENS_DIR set they are copied there too.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf

CHROMIUM = os.environ.get("SER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(f"browser tests skipped: no Chromium at {CHROMIUM} (run `make browser` as root to install it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests skipped: `pip install playwright`")

from ser import EMOTIONS  # noqa: E402
from ser.report_html import write_run_report  # noqa: E402
from ser.serve import Limits, create_app  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required"]
LIMITS = Limits(max_upload_bytes=4_000_000, max_duration_s=60.0)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(svc_model):
    """`ser serve`'s app (the page mounted) under uvicorn on a free 127.0.0.1 port."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    srv = uvicorn.Server(uvicorn.Config(create_app(svc_model[1], LIMITS), log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield url
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield b
    b.close()


@pytest.fixture(scope="module")
def screens(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screens")


def shoot(page, screens: Path, name: str) -> Path:
    path = screens / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("SER_SCREENS_DIR"):
        Path(os.environ["SER_SCREENS_DIR"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["SER_SCREENS_DIR"]) / path.name)
    return path


def open_page(browser, url: str):
    """A fresh page (its own session, so its own voice) with every request it makes recorded."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto(url)
    page.wait_for_selector("#model-body table")
    return page


def inked(page, canvas: str) -> int:
    """How many pixels of a canvas are drawn (not transparent)."""
    return page.evaluate("""(sel) => { const c = document.querySelector(sel);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""", canvas)


def only_local(page, url: str) -> None:
    strays = [u for u in page.requests if not u.startswith((url, "data:"))]
    assert strays == [], strays


def shown_probabilities(page) -> dict[str, float]:
    rows = page.query_selector_all("#bars .row")
    return {r.get_attribute("data-emotion"): float(r.query_selector(".value").inner_text().rstrip("%")) for r in rows}


def test_upload_shows_emotion_probabilities_and_plots(browser, server, clips, screens):
    import httpx

    clip = next(c for c in clips if c.parent.name == "happy")
    expected = httpx.post(f"{server}/predict", files={"file": (clip.name, clip.read_bytes(), "audio/wav")}).json()
    page = open_page(browser, server)
    assert "svc" in page.inner_text("#model-body") and "speaker holdout" in page.inner_text("#model-body")
    page.set_input_files("#file", str(clip))
    page.wait_for_selector("#result:not([hidden])")
    assert page.text_content("#emotion") == expected["emotion"]
    assert page.inner_text("#confidence") == f"{100 * expected['confidence']:.1f}% confident"
    probs = shown_probabilities(page)
    assert list(probs) == list(EMOTIONS)
    assert probs == {e: pytest.approx(100 * p, abs=0.051) for e, p in expected["probabilities"].items()}
    assert inked(page, "#radar") > 2000 and inked(page, "#waveform") > 10000
    assert page.evaluate("document.querySelector('#spectrogram').naturalWidth") > 300
    assert page.is_hidden("#timeline-box") and page.is_hidden("#error")
    assert "1 of 10 clips of your voice" in page.inner_text("#voice-text")
    shoot(page, screens, "page-upload")
    only_local(page, server)
    page.context.close()


def test_long_clip_draws_the_timeline(browser, server, long_clip, screens):
    from ser.predict import n_segments

    page = open_page(browser, server)
    page.set_input_files("#file", str(long_clip))
    page.wait_for_selector("#timeline-box:not([hidden])")
    n = n_segments(sf.info(long_clip).frames, 16000, 3.0, 1.0)
    assert page.inner_text("#timeline-text").startswith(f"{n} windows of 3 s, one every 1 s")
    assert inked(page, "#timeline") > 20000
    assert page.query_selector_all("#legend span").__len__() == 7
    shoot(page, screens, "page-timeline")
    only_local(page, server)
    page.context.close()


def test_voice_normalisation_after_enough_clips(browser, server, clips):
    page = open_page(browser, server)
    for i, clip in enumerate(clips[:10]):
        page.set_input_files("#file", str(clip))
        page.wait_for_function("(n) => document.querySelector('#status').textContent === n",
                               arg=f"Analysed {clip.name}.")
        if i < 9:
            assert f"Heard {i + 1} of 10 clips" in page.inner_text("#voice-text")
    assert "Heard enough of your voice (10 clips)" in page.inner_text("#voice-text")
    assert "normalised by your voice" in page.inner_text("#clip-info")
    page.click("#new-voice")
    page.set_input_files("#file", str(clips[0]))
    page.wait_for_function("() => document.querySelector('#voice-text').textContent.includes('Heard 1 of 10')")
    page.context.close()


def test_junk_upload_shows_a_readable_error(browser, server, screens):
    page = open_page(browser, server)
    page.set_input_files("#file", files=[{"name": "notes.wav", "mimeType": "audio/wav",
                                          "buffer": b"shopping list: eggs, milk\n" * 40}])
    page.wait_for_selector("#error:not([hidden])")
    text = page.inner_text("#error")
    assert text == ("This clip could not be analysed: notes.wav: not WAV, FLAC or OGG audio "
                    "(unrecognised file signature)")
    assert page.is_hidden("#result")
    shoot(page, screens, "page-error")
    page.context.close()


def test_record_from_a_fake_microphone(playwright, server, long_clip, screens):
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=[
        *ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={long_clip}"])
    try:
        page = open_page(b, server)
        page.click("#record")
        page.wait_for_function("() => document.querySelector('#rec-time').textContent.startsWith('recording 2.5')",
                               timeout=15000)
        page.click("#stop")
        page.wait_for_selector("#result:not([hidden])", timeout=30000)
        assert page.is_hidden("#error")
        assert page.text_content("#emotion") in EMOTIONS
        info = page.inner_text("#clip-info")
        assert info.startswith("recording.wav, ")
        seconds = float(info.split(", ")[1].removesuffix(" s"))
        assert 2.0 <= seconds <= 4.0
        peak = page.evaluate("document.querySelector('#waveform').getContext('2d') && true")
        assert peak and inked(page, "#waveform") > 10000
        assert sum(shown_probabilities(page).values()) == pytest.approx(100, abs=0.4)
        shoot(page, screens, "page-microphone")
        only_local(page, server)
    finally:
        b.close()


def test_run_report_opens_offline(browser, screens, tmp_path, run_outputs):
    out = write_run_report(run_outputs, tmp_path / "reports" / "index.html")
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(out.as_uri())
    page.wait_for_load_state("load")
    headings = page.eval_on_selector_all("section > h2", "hs => hs.map(h => h.textContent)")
    assert headings == ["1. Data", "2. Validation", "3. Leaderboard", "4. Scores per corpus and per gender",
                        "5. Cross-validation on every speaker", "6. Confusion matrices", "7. Cross-corpus",
                        "8. Training curves", "9. The chosen model", "10. The params that produced it"]
    sizes = page.eval_on_selector_all("img", "is => is.map(i => i.complete ? i.naturalWidth : 0)")
    assert len(sizes) >= 14 and min(sizes) > 100
    assert "Cross-corpus UAR of logistic" in page.inner_text("#cross-corpus")  # the committed run's stage output
    assert "female UAR" in page.inner_text("#scores") and "0.050 s of audio" in page.inner_text("#data")
    assert page.is_visible("#best b")
    strays = [u for u in requests if not u.startswith(("file:", "data:"))]
    assert strays == [] and requests[0] == out.as_uri()
    shoot(page, screens, "report")
    context.close()
