from collections import Counter
from pathlib import PurePosixPath

import pytest

from ser.corpora import SchemeError
from ser.corpora.emodb import Emodb


@pytest.mark.shared
def test_every_shared_file_parses(shared_corpora):
    corpus = Emodb(shared_corpora / "emodb")
    rows = [(p, corpus.parse(PurePosixPath(p.relative_to(corpus.root).as_posix()))) for p in corpus.files()]
    assert len(rows) == 92
    assert Counter(u.speaker for _, u in rows) == {"03": 49, "09": 43}
    assert {(u.speaker, u.gender, u.extra["age"]) for _, u in rows} == {("03", "male", 31), ("09", "female", 21)}
    counts = Counter(u.raw_label for _, u in rows)
    letters = Counter(p.stem[5] for p, _ in rows)
    assert letters == {"W": 27, "N": 20, "F": 11, "T": 11, "L": 9, "E": 9, "A": 5}
    assert counts == {"anger": 27, "neutral": 20, "happiness": 11, "sadness": 11, "boredom": 9, "disgust": 9, "fear": 5}


def test_name_fields():
    utt = Emodb("unused").parse(PurePosixPath("wav/16b10Lb.wav"))
    assert (utt.speaker, utt.raw_label, utt.gender, utt.language) == ("16", "boredom", "female", None)
    assert utt.extra == {"text": "b10", "version": "b", "age": 31}
    assert Emodb.language == "de"


@pytest.mark.parametrize(("name", "needle"), [
    ("wav/04a01Wa.wav", "unknown EmoDB speaker '04'"),
    ("wav/03a01Xa.wav", "emotion letter 'X'"),
    ("wav/03a01W.wav", "SSTTTEV"),
])
def test_bad_names(name, needle):
    with pytest.raises(SchemeError) as err:
        Emodb("unused").parse(PurePosixPath(name))
    assert needle in err.value.reason


def test_detect(tmp_path, write_wav):
    write_wav(tmp_path / "emodb" / "wav" / "03a01Fa.wav")
    write_wav(tmp_path / "flat" / "11b03Ta.wav")
    assert Emodb.detect(tmp_path / "emodb")
    assert Emodb.detect(tmp_path / "emodb" / "wav")
    assert Emodb.detect(tmp_path / "flat")
    assert not Emodb.detect(tmp_path)
