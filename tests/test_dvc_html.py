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
