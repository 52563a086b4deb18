import csv
from collections import Counter
from pathlib import PurePosixPath

import pytest

from ser.corpora import SchemeError
from ser.corpora.cremad import Cremad


@pytest.fixture
def names(shared_corpora):
    lines = (shared_corpora / "cremad-metadata" / "AudioWAV-filenames.txt").read_text().split()
    return [PurePosixPath(line) for line in lines]


@pytest.mark.shared
def test_every_real_name_parses(shared_corpora, names):
    corpus = Cremad(shared_corpora / "cremad-metadata" / "AudioWAV")  # demographics found in the parent
    utts = [corpus.parse(name) for name in names]
    assert len(utts) == 7442
    counts = Counter(u.raw_label for u in utts)
    # Independent check: count the emotion field in the raw names.
    codes = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "SAD": "sad", "NEU": "neutral"}
    for code, raw in codes.items():
        assert counts[raw] == sum(f"_{code}_" in n.name for n in names)
    assert counts == {"anger": 1271, "disgust": 1271, "fear": 1271, "happy": 1271, "sad": 1271, "neutral": 1087}
    assert len({u.speaker for u in utts}) == 91
    assert Counter(u.extra["level"] for u in utts) == {"unspecified": 6077, "low": 455, "medium": 455, "high": 455}
    assert Counter(u.extra["sentence"] for u in utts)["IEO"] == 1456
    assert all(u.gender in ("male", "female") for u in utts)


@pytest.mark.shared
def test_demographics(shared_corpora):
    csv_path = shared_corpora / "cremad-metadata" / "VideoDemographics.csv"
    corpus = Cremad(shared_corpora / "cremad-metadata" / "AudioWAV")
    utt = corpus.parse(PurePosixPath("AudioWAV/1001_DFA_ANG_XX.wav"))
    assert (utt.speaker, utt.gender, utt.extra["age"]) == ("1001", "male", 51)
    assert corpus.parse(PurePosixPath("1002_IEO_HAP_HI.wav")).gender == "female"
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    genders = Counter(g for g, _ in corpus.speakers().values())
    assert genders == {"male": sum(r["Sex"] == "Male" for r in rows), "female": sum(r["Sex"] == "Female" for r in rows)}
    assert genders == {"male": 48, "female": 43}
    # The option, absolute or relative to the root, points at the same table.
    by_option = Cremad(shared_corpora, options={"demographics": csv_path})
    assert by_option.parse(PurePosixPath("AudioWAV/1091_WSI_SAD_XX.wav")).gender == corpus.speakers()["1091"][0]
    relative = Cremad(shared_corpora, options={"demographics": "cremad-metadata/VideoDemographics.csv"})
    assert relative.speakers() == corpus.speakers()


def test_without_demographics_gender_is_unknown(tmp_path):
    utt = Cremad(tmp_path / "AudioWAV").parse(PurePosixPath("1001_DFA_ANG_XX.wav"))
    assert (utt.speaker, utt.raw_label, utt.gender) == ("1001", "anger", "unknown")
    assert utt.extra == {"sentence": "DFA", "level": "unspecified"}


def test_demographics_read_once(tmp_path):
    (tmp_path / "VideoDemographics.csv").write_text(
        '"ActorID","Age","Sex","Race","Ethnicity"\n1001,51,"Male","Caucasian","Not Hispanic"\n')
    corpus = Cremad(tmp_path / "AudioWAV")
    assert corpus.parse(PurePosixPath("1001_TIE_NEU_XX.wav")).gender == "male"
    (tmp_path / "VideoDemographics.csv").unlink()
    assert corpus.parse(PurePosixPath("1001_TIE_SAD_LO.wav")).gender == "male"


def test_missing_demographics_option_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="demographics"):
        Cremad(tmp_path, options={"demographics": "nope.csv"}).parse(PurePosixPath("1001_DFA_ANG_XX.wav"))


@pytest.mark.parametrize(("name", "needle"), [
    ("1001_DFA_BOR_XX.wav", "emotion code 'BOR'"),
    ("1001_ABC_ANG_XX.wav", "sentence code 'ABC'"),
    ("1001_DFA_ANG_ZZ.wav", "level 'ZZ'"),
    ("1001-DFA-ANG-XX.wav", "ActorID_Sentence_Emotion_Level"),
])
def test_bad_names(name, needle):
    with pytest.raises(SchemeError) as err:
        Cremad("unused").parse(PurePosixPath(name))
    assert needle in err.value.reason


def test_detect(tmp_path, write_wav):
    write_wav(tmp_path / "crema" / "AudioWAV" / "1001_DFA_ANG_XX.wav")
    write_wav(tmp_path / "flat" / "1001_DFA_ANG_XX.wav")
    (tmp_path / "other").mkdir()
    assert Cremad.detect(tmp_path / "crema")
    assert Cremad.detect(tmp_path / "crema" / "AudioWAV")
    assert Cremad.detect(tmp_path / "flat")
    assert not Cremad.detect(tmp_path / "other")
