"""Edit the `corpora:` block of params.yaml in place; every other line stays byte for byte.

A YAML round trip (even ruamel's) re-wraps long flow mappings and writes `null` as an empty value, so
the block is replaced as text: from the `corpora:` line to the next line that starts in column 0.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ser.io import atomic_path

_KEY = re.compile(r"^corpora:")


def block_span(lines: list[str]) -> tuple[int, int] | None:
    """[start, end) of the top-level `corpora:` block, without the blank lines that follow it."""
    start = next((i for i, line in enumerate(lines) if _KEY.match(line)), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t"):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return start, end


def render_corpora(corpora: dict[str, dict[str, Any]]) -> str:
    return yaml.safe_dump({"corpora": corpora}, default_flow_style=False, sort_keys=False, width=4096)


def set_corpora(path: Path | str, corpora: dict[str, dict[str, Any]]) -> None:
    """Replace the `corpora:` block of a params file (appending one if it has none)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    block = render_corpora(corpora)
    span = block_span(lines)
    if span is None:
        new = text + ("" if text.endswith("\n") or not text else "\n") + block
    else:
        new = "".join(lines[: span[0]]) + block + "".join(lines[span[1]:])
    expected = yaml.safe_load(text) or {}
    expected["corpora"] = corpora
    if yaml.safe_load(new) != expected:  # pragma: no cover - guards the text splice
        raise ValueError(f"could not replace the corpora block of {path} without touching other keys")
    with atomic_path(path) as tmp:
        tmp.write_text(new, encoding="utf-8")
