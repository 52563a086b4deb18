from collections import Counter
from pathlib import PurePosixPath

import pytest

from ser.corpora import SchemeError
from ser.corpora.folder import Folder


def parse_all(corpus):
    return [corpus.parse(PurePosixPath(p.relative_to(corpus.root).as_posix())) for p in corpus.files()]


def test_flat_emotion_folders(tmp_path, write_wav):
    for folder in ("Angry", "happy", "Pleasant Surprise", "so-so"):
        write_wav(tmp_path / folder / "clip01.wav")
    utts = parse_all(Folder(tmp_path))
    assert sorted(u.raw_label for u in utts) == ["angry", "happy", "pleasant_surprise", "so_so"]
    assert {(u.speaker, u.gender, u.language) for u in utts} == {("unknown", "unknown", None)}
    assert Folder.detect(tmp_path)


def test_speaker_folders_with_speakers_csv(tmp_path, write_wav):
    for spk in ("spk01", "spk02", "spk03"):
        for emotion in ("neutral", "sad"):
            write_wav(tmp_path / spk / emotion / f"{spk}_{emotion}_1.wav", seconds=0.05)
    (tmp_path / "speakers.csv").write_text("speaker,gender,language\nspk01,female,en\nspk02,M,\n")
    corpus = Folder(tmp_path)
    utts = parse_all(corpus)
    assert Counter((u.speaker, u.gender, u.language) for u in utts) == {
        ("spk01", "female", "en"): 2, ("spk02", "male", None): 2, ("spk03", "unknown", None): 2}
    assert Counter(u.raw_label for u in utts) == {"neutral": 3, "sad": 3}
    assert Folder.detect(tmp_path)
    (tmp_path / "speakers.csv").unlink()  # read once per instance
    assert corpus.parse(PurePosixPath("spk01/sad/x.wav")).gender == "female"
    assert Folder(tmp_path).parse(PurePosixPath("spk01/sad/x.wav")).gender == "unknown"


def test_speakers_csv_without_language_column(tmp_path):
    (tmp_path / "speakers.csv").write_text("speaker,gender\nA,f\n")
    utt = Folder(tmp_path).parse(PurePosixPath("A/happy/1.wav"))
    assert (utt.speaker, utt.gender, utt.language) == ("A", "female", None)


def test_bad_speakers_csv(tmp_path):
    (tmp_path / "speakers.csv").write_text("speaker,gender\nA,robot\n")
    with pytest.raises(ValueError, match="robot"):
        Folder(tmp_path).parse(PurePosixPath("A/happy/1.wav"))


@pytest.mark.parametrize(("name", "needle"), [
    ("a/b/angry/1.wav", "found 3 folder level(s)"),
    ("1.wav", "found 0 folder level(s)"),
])
def test_bad_depth(tmp_path, name, needle):
    with pytest.raises(SchemeError) as err:
        Folder(tmp_path).parse(PurePosixPath(name))
    assert needle in err.value.reason and "<speaker>/<emotion>/<file>" in err.value.reason


def test_detect_needs_an_emotion_folder(tmp_path, write_wav):
    write_wav(tmp_path / "recordings" / "take1.wav")
    assert not Folder.detect(tmp_path)
    (tmp_path / "recordings" / "Fearful").mkdir()
    assert Folder.detect(tmp_path)
