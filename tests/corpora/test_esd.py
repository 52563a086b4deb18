from collections import Counter
from pathlib import PurePosixPath

import pytest

from ser.corpora import SchemeError
from ser.corpora.esd import Esd

FOLDERS = ("Angry", "Happy", "Neutral", "Sad", "Surprise")
# ESD numbers utterances per emotion: Neutral 1-350, Angry 351-700, Happy 701-1050, Sad 1051-1400, Surprise 1401-1750.
FIRST_ID = {"Neutral": 1, "Angry": 351, "Happy": 701, "Sad": 1051, "Surprise": 1401}


def parse_all(corpus):
    return [corpus.parse(PurePosixPath(p.relative_to(corpus.root).as_posix())) for p in corpus.files()]


@pytest.fixture
def esd_root(tmp_path, write_wav):
    root = tmp_path / "ESD"
    for spk in ("0001", "0004", "0011", "0015"):
        for folder in FOLDERS:
            for i in range(2):
                write_wav(root / spk / folder / f"{spk}_{FIRST_ID[folder] + i:06d}.wav", seconds=0.05)
        (root / spk / f"{spk}.txt").write_text("transcripts\n")
    return root


def test_parse_layout(esd_root):
    utts = parse_all(Esd(esd_root))
    assert len(utts) == 40
    assert Counter(u.raw_label for u in utts) == {e.lower(): 8 for e in FOLDERS}
    assert {(u.speaker, u.gender, u.language) for u in utts} == {
        ("0001", "female", "zh"), ("0004", "male", "zh"), ("0011", "male", "en"), ("0015", "female", "en")}
    assert Esd.detect(esd_root) and Esd.detect(esd_root / "0011")
    assert not Esd.detect(esd_root / "0011" / "Angry")


@pytest.mark.parametrize(("name", "speaker", "raw", "extra"), [
    ("0011/Angry/0011_000351.wav", "0011", "angry", {"utterance": "000351"}),
    ("0020/surprise/0020_001401.wav", "0020", "surprise", {"utterance": "001401"}),
    ("0003/NEUTRAL/0003_000001.wav", "0003", "neutral", {"utterance": "000001"}),
    ("Emotion Speech Dataset/0010/Sad/0010_001051.wav", "0010", "sad", {"utterance": "001051"}),
    ("0016/Happy/train/0016_000701.wav", "0016", "happy", {"utterance": "000701", "split": "train"}),
    ("0016/Happy/evaluation/0016_000702.wav", "0016", "happy", {"utterance": "000702", "split": "evaluation"}),
])
def test_names(name, speaker, raw, extra):
    utt = Esd("unused").parse(PurePosixPath(name))
    assert (utt.speaker, utt.raw_label, utt.extra) == (speaker, raw, extra)
    assert utt.language == ("zh" if int(speaker) <= 10 else "en")


def test_root_may_be_one_speaker(tmp_path):
    utt = Esd(tmp_path / "0012").parse(PurePosixPath("Angry/0012_000400.wav"))
    assert (utt.speaker, utt.gender) == ("0012", "male")


@pytest.mark.parametrize(("name", "needle"), [
    ("0011/Angry/0012_000351.wav", "speaker 0012 inside speaker folder 0011"),
    ("0011/Bored/0011_000351.wav", "Angry, Happy, Neutral, Sad, Surprise"),
    ("0021/Angry/0021_000351.wav", "unknown ESD speaker '0021'"),
    ("0011/Angry/351.wav", "<speaker>_<utterance>"),
])
def test_bad_names(name, needle):
    with pytest.raises(SchemeError) as err:
        Esd("unused").parse(PurePosixPath(name))
    assert needle in err.value.reason
