"""Edit params.yaml in place without losing its comments (ruamel round-trip, as `dvc exp run -S` does)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ser.io import atomic_path


def set_corpora(path: Path | str, corpora: dict[str, dict[str, Any]]) -> None:
    """Replace the `corpora:` block of a params file, keeping everything else byte for byte where possible."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    path = Path(path)
    data = yaml.load(path.read_text(encoding="utf-8"))
    data["corpora"] = corpora
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        yaml.dump(data, fh)
