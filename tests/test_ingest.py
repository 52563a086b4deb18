"""Ingest: usable files become manifest rows, every other file a quarantine row with its reason."""
import pandas as pd
import pytest

from ser import EMOTIONS
from ser.ingest import MANIFEST_COLUMNS, ingest_corpus, summary
from ser.params import load_params
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = load_params(ROOT / "params.yaml").labels


@pytest.fixture
def ravdess_dir(tmp_path, write_wav):
    root = tmp_path / "ravdess"
    write_wav(root / "Actor_07/03-01-05-02-01-01-07.wav", seconds=0.5)       # angry, male
    write_wav(root / "Actor_08/03-01-02-01-02-02-08.wav", seconds=0.5, channels=2)  # calm -> neutral, female
    write_wav(root / "Actor_08/03-02-06-01-01-01-08.wav", seconds=0.5)       # song: excluded by default
    good = write_wav(root / "Actor_07/03-01-04-01-01-01-07.wav", seconds=0.5)
    (root / "Actor_07/03-01-03-01-01-01-07.wav").write_bytes(good.read_bytes()[:30])  # truncated header
    (root / "Actor_07/03-01-03-01-01-02-07.wav").write_bytes(b"")                    # zero-length
    (root / "Actor_07/03-01-03-01-02-01-07.wav").write_text("not audio at all, a text file")
    write_wav(root / "Actor_07/03-01-09-01-01-01-07.wav", seconds=0.5)       # unknown emotion code
    write_wav(root / "Actor_07/readme.wav", seconds=0.5)                     # outside the scheme
    write_wav(root / "Actor_07/03-01-01-01-01-01-07.wav", seconds=0.01)      # too short
    return root


def test_ravdess_manifest_and_quarantine(ravdess_dir):
    result = ingest_corpus(ravdess_dir, "ravdess", LABELS["ravdess"], workers=2)
    m = result.manifest.set_index("path")
    assert list(result.manifest.columns) == MANIFEST_COLUMNS
    assert result.files == 10 and len(m) == 3
    angry = m.loc["Actor_07/03-01-05-02-01-01-07.wav"]
    assert (angry.speaker, angry.gender, angry.raw_label, angry.emotion, angry.language) == \
        ("ravdess:07", "male", "angry", "angry", "en")
    assert angry.sample_rate == 16000 and angry.channels == 1 and angry.duration_s == pytest.approx(0.5)
    assert len(angry.sha1) == 40 and angry.utt_id == "ravdess/Actor_07/03-01-05-02-01-01-07.wav"
    calm = m.loc["Actor_08/03-01-02-01-02-02-08.wav"]
    assert (calm.raw_label, calm.emotion, calm.gender, calm.channels) == ("calm", "neutral", "female", 2)

    q = result.quarantine.set_index("path")
    assert q.loc["Actor_08/03-02-06-01-01-01-08.wav", "kind"] == "excluded"
    assert q.loc["Actor_07/03-01-09-01-01-01-07.wav", "kind"] == "scheme"
    assert "emotion code '09'" in q.loc["Actor_07/03-01-09-01-01-01-07.wav", "reason"]
    assert q.loc["Actor_07/readme.wav", "kind"] == "scheme"
    for bad in ("03-01-03-01-01-01-07.wav", "03-01-03-01-01-02-07.wav", "03-01-03-01-02-01-07.wav"):
        assert q.loc[f"Actor_07/{bad}", "kind"] == "audio", bad
    assert "duration 0.010 s" in q.loc["Actor_07/03-01-01-01-01-01-07.wav", "reason"]
    s = summary(result)["ravdess"]
    assert s["files"] == s["kept"] + sum(s["quarantined"].values()) == 10
    assert s["quarantined"] == {"audio": 4, "excluded": 1, "scheme": 2}
    assert s["emotions"]["angry"] == 1 and s["emotions"]["neutral"] == 1 and s["emotions"]["sad"] == 1


def test_label_mapped_to_null_is_quarantined_with_its_key(tmp_path, write_wav):
    root = tmp_path / "emodb"
    write_wav(root / "wav/03a01La.wav", seconds=0.5)  # boredom
    write_wav(root / "wav/03a01Wa.wav", seconds=0.5)  # anger
    result = ingest_corpus(root, "emodb", LABELS["emodb"])
    assert result.manifest["emotion"].tolist() == ["angry"]
    reason = result.quarantine.loc[0, "reason"]
    assert result.quarantine.loc[0, "kind"] == "label" and "labels.emodb.boredom: null" in reason


def test_folder_corpus_with_corpus_name_prefix(tmp_path, write_wav):
    root = tmp_path / "mine"
    write_wav(root / "alice/Happy/a1.wav", seconds=0.4)
    write_wav(root / "alice/bored/a2.wav", seconds=0.4)
    result = ingest_corpus(root, "folder", LABELS["folder"], name="mine")
    assert result.manifest[["speaker", "emotion", "corpus"]].values.tolist() == [["mine:alice", "happy", "mine"]]
    assert "raw label 'bored' is not in labels.folder" in result.quarantine.loc[0, "reason"]


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        ingest_corpus(tmp_path / "absent", "ravdess", LABELS["ravdess"])


@pytest.mark.shared
@pytest.mark.parametrize("name", ["ravdess", "tess", "emodb", "cremad", "savee", "casia", "esd"])
def test_shared_corpora_rows_plus_quarantine_equal_files(shared_corpora, shared_manifest, name):
    listed = shared_manifest[shared_manifest["corpus"] == name].assign(
        rel=lambda t: t["path"].str.removeprefix(f"{name}/"))
    result = ingest_corpus(shared_corpora / name, name, LABELS[name])
    assert result.files == len(listed) == len(result.manifest) + len(result.quarantine)
    m = result.manifest
    assert set(m["emotion"]) <= set(EMOTIONS)
    # rate and channels as MANIFEST.tsv records them (stereo originals are kept, then down-mixed on load)
    expected = listed.set_index("rel").loc[m["path"]]
    assert m["sample_rate"].tolist() == expected["sample_rate"].tolist()
    assert m["channels"].tolist() == expected["channels"].tolist()
    assert set(result.quarantine["kind"]) <= {"label"}  # only labels a map sends to null (EmoDB boredom)
    if name == "emodb":  # boredom is the letter L in EmoDB's names
        assert (result.quarantine["kind"] == "label").sum() == listed["name"].str[5].eq("L").sum()
        assert m.groupby("speaker")["gender"].first().to_dict() == {"emodb:03": "male", "emodb:09": "female"}
