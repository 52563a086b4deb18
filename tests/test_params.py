"""params.yaml is validated up front, and a bad value names its key."""
from pathlib import Path

import pytest
import yaml

from ser.params import ParamsError, load_params
from ser.params_edit import set_corpora

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, **changes):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_project_params_load():
    p = load_params(ROOT / "params.yaml")
    assert p.label_map("demo")["ps"] == "surprise"
    assert p.labels["ravdess"]["calm"] == "neutral"
    assert p.labels["emodb"]["boredom"] is None
    assert p.split.ratios == {"train": 0.7, "val": 0.15, "test": 0.15}


@pytest.mark.parametrize("change, key", [
    ({"corpora": {"x": {"format": "nonesuch", "root": "d"}}}, "corpora.x.format"),
    ({"split__ratios": {"train": 1.2, "val": -0.2, "test": 0.0}}, "split.ratios"),
    ({"labels__ravdess__calm": "relaxed"}, "labels"),
    ({"split__protocol": "random"}, "split.protocol"),
    ({"split__protocol": "cross_corpus"}, "split.test_corpora is empty"),
    ({"ingest__workers": 0}, "ingest.workers"),
    ({"demo__speakers": 3}, "demo.speakers"),
])
def test_bad_values_name_their_key(tmp_path, change, key):
    with pytest.raises(ParamsError) as err:
        load_params(write(tmp_path, **change))
    assert key in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_set_corpora_keeps_comments(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    set_corpora(path, {"ravdess": {"format": "ravdess", "root": "../shared/corpora/ravdess"}})
    text = path.read_text()
    assert "# RAVDESS's calm is a low-arousal baseline" in text
    p = load_params(path)
    assert list(p.corpora) == ["ravdess"] and p.corpora["ravdess"].root == Path("../shared/corpora/ravdess")


def test_set_corpora_changes_only_the_corpora_block(tmp_path):
    """`make run CORPORA=...` must not turn `null` into a bare key or re-wrap the one-line model entries."""
    original = (ROOT / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(original)
    set_corpora(path, {"ravdess": {"format": "ravdess", "root": "../shared/corpora/ravdess"},
                       "tess": {"format": "tess", "root": "../shared/corpora/tess", "options": None}})
    before, after = original.splitlines(), path.read_text().splitlines()
    start = before.index("corpora:")
    old_end = next(i for i in range(start + 1, len(before)) if before[i] and not before[i][0].isspace())
    new_end = next(i for i in range(start + 1, len(after)) if after[i] and not after[i][0].isspace())
    assert after[:start] == before[:start]
    assert after[new_end:] == before[old_end:]  # every later line, `null`s and flow mappings included
    assert after[start:new_end] == ["corpora:", "  ravdess:", "    format: ravdess",
                                    "    root: ../shared/corpora/ravdess", "  tess:", "    format: tess",
                                    "    root: ../shared/corpora/tess", "    options: null", ""]
    assert not any(line != line.rstrip() for line in after if line not in before)
    set_corpora(path, {"demo": {"format": "folder", "root": "data/raw/demo"}})
    assert path.read_text() == original  # and back again, byte for byte
