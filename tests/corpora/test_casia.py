from collections import Counter
from pathlib import PurePosixPath

import pytest

from ser.corpora import SchemeError
from ser.corpora.casia import Casia

SPEAKERS = {"liuchanhg": "female", "wangzhe": "male", "zhaoquanyin": "female", "ZhaoZuoxiang": "male"}
EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")


@pytest.fixture
def casia_root(tmp_path, write_wav):
    root = tmp_path / "CASIA"
    for spk in SPEAKERS:
        for emotion in EMOTIONS:
            write_wav(root / spk / emotion / "201.wav", seconds=0.05)
            write_wav(root / spk / emotion / "202.wav", seconds=0.05)
    return root


def test_parse_layout(casia_root):
    corpus = Casia(casia_root)
    utts = [corpus.parse(PurePosixPath(p.relative_to(casia_root).as_posix())) for p in corpus.files()]
    assert len(utts) == 48
    assert Counter(u.raw_label for u in utts) == {e: 8 for e in EMOTIONS}
    assert {(u.speaker, u.gender) for u in utts} == set(SPEAKERS.items())
    assert Casia.language == "zh" and {u.language for u in utts} == {None}
    assert Casia.detect(casia_root)


def test_names():
    utt = Casia("unused").parse(PurePosixPath("zhaozuoxiang/Surprise/450.wav"))
    assert (utt.speaker, utt.gender, utt.raw_label) == ("ZhaoZuoxiang", "male", "surprise")
    assert utt.extra == {"sentence": "450"}
    assert Casia("x/wangzhe").parse(PurePosixPath("sad/300.wav")).speaker == "wangzhe"


@pytest.mark.parametrize(("name", "needle"), [
    ("lisi/angry/201.wav", "unknown CASIA speaker 'lisi'"),
    ("wangzhe/bored/201.wav", "emotion one of angry"),
    ("wangzhe/angry/take1.wav", "numbered"),
])
def test_bad_names(name, needle):
    with pytest.raises(SchemeError) as err:
        Casia("unused").parse(PurePosixPath(name))
    assert needle in err.value.reason


def test_detect_needs_a_known_speaker(tmp_path, write_wav):
    write_wav(tmp_path / "someone" / "angry" / "201.wav")
    assert not Casia.detect(tmp_path)
    write_wav(tmp_path / "wangzhe" / "angry" / "201.wav")
    assert Casia.detect(tmp_path)
