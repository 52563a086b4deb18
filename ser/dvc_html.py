"""An HTML template for `dvc plots show --html-template` that works offline.

DVC's default page loads vega, vega-lite and vega-embed from a CDN, so the charts are blank without a
network. This template inlines the same three libraries from the `vl-convert-python` wheel (its
`javascript_bundle`, a classic script that sets `window.vegaEmbed`) and leaves out DVC's `{scripts}`
placeholder, where the CDN tags would go.

    python -m ser.dvc_html build/dvc_plots_template.html
    dvc plots show --html-template build/dvc_plots_template.html -o dvc_plots
"""
from __future__ import annotations

import sys
from pathlib import Path

from ser.io import atomic_path

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>ser: DVC plots</title>
    <script type="text/javascript">
__BUNDLE__
    </script>
    <style>
        body { font-family: sans-serif; }
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def template_html() -> str:
    """The page: DVC's placeholders `{refresh_tag}` and `{plot_divs}`, the JS bundle inlined."""
    import vl_convert

    bundle = vl_convert.javascript_bundle()
    if "</script" in bundle.lower():  # would close the tag early
        raise ValueError("the vega bundle contains '</script'; cannot inline it")
    return PAGE.replace("__BUNDLE__", bundle)


def write_template(path: Path | str) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(template_html(), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = write_template(args[0] if args else "build/dvc_plots_template.html")
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
