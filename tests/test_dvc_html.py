"""The offline `dvc plots show` template: DVC accepts it, and the page it renders loads nothing remote."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

pytest.importorskip("vl_convert")

from ser.dvc_html import template_html, write_template  # noqa: E402


def test_template_inlines_vega_and_keeps_dvc_placeholders(tmp_path):
    html = template_html()
    assert "{plot_divs}" in html and "{refresh_tag}" in html
    assert "{scripts}" not in html  # where DVC would put its CDN <script src> tags
    assert "window.vegaEmbed=" in html.replace(" ", "")
    assert not re.search(r"<script[^>]+src=", html)
    assert write_template(tmp_path / "t.html").read_text(encoding="utf-8") == html


def test_dvc_renders_a_history_plot_with_no_remote_script(tmp_path):
    from dvc_render import render_html
    from dvc_render.vega import VegaRenderer

    datapoints = [{"epoch": 1, "loss": 1.9, "val_loss": 2.0}, {"epoch": 2, "loss": 1.5, "val_loss": 1.7}]
    renderer = VegaRenderer(datapoints, "plots/models/cnn2d/history.csv", x="epoch", y="loss")
    page = render_html([renderer], tmp_path / "index.html", html_template=write_template(tmp_path / "t.html"))
    text = page.read_text(encoding="utf-8")
    assert "vegaEmbed('#" in text and "cdn.jsdelivr" not in text
    assert not re.search(r"<script[^>]+src=", text)


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_bundle_defines_vega_embed_when_run(tmp_path):
    html = template_html()
    bundle = html.split('<script type="text/javascript">', 1)[1].split("</script>", 1)[0]
    script = tmp_path / "run.js"
    script.write_text("globalThis.window = globalThis; globalThis.document = {addEventListener(){}, "
                      "removeEventListener(){}};\n" + bundle +
                      "\nconsole.log(typeof window.vegaEmbed);")
    run = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["function"]  # what DVC's plot divs call


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_chromium() is None, reason="no chromium to open the page with")
def test_page_draws_the_chart_with_the_network_cut_off(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from dvc_render import render_html
    from dvc_render.vega import VegaRenderer

    datapoints = [{"epoch": e, "loss": 2.0 / e, "val_loss": 2.2 / e} for e in range(1, 6)]
    renderer = VegaRenderer(datapoints, "plots/models/cnn2d/history.csv", x="epoch", y="loss")
    page_path = render_html([renderer], tmp_path / "index.html", html_template=write_template(tmp_path / "t.html"))
    remote: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        page.route(re.compile(r"^https?://"), lambda route: (remote.append(route.request.url), route.abort()))
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(page_path.resolve().as_uri())
        page.wait_for_selector("svg.marks, canvas.marks", timeout=20000)
        marks = page.locator(".marks").count()
        browser.close()
    assert marks >= 1 and errors == [] and remote == []
