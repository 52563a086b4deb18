from collections import Counter
from pathlib import PurePosixPath

import pytest

from ser.corpora import SchemeError
from ser.corpora.tess import Tess

RAW = ("angry", "disgust", "fear", "happy", "neutral", "pleasant_surprise", "sad")


@pytest.mark.shared
def test_every_shared_file_parses(shared_corpora):
    corpus = Tess(shared_corpora / "tess")
    rows = [(p, corpus.parse(PurePosixPath(p.relative_to(corpus.root).as_posix()))) for p in corpus.files()]
    assert len(rows) == 210
    assert Counter(u.raw_label for _, u in rows) == {raw: 30 for raw in RAW}
    assert {(u.speaker, u.gender, u.extra["age"]) for _, u in rows} == {("YAF", "female", 26)}
    # The same 30 words in every emotion.
    words = Counter(u.extra["word"] for _, u in rows)
    assert len(words) == 30 and set(words.values()) == {7}
    assert Counter(p.stem.rsplit("_", 1)[1] for p, _ in rows)["ps"] == 30


@pytest.mark.parametrize(("name", "speaker", "raw", "word"), [
    ("OAF_angry/OAF_back_angry.wav", "OAF", "angry", "back"),
    ("OAF_Fear/OAF_food_fear.wav", "OAF", "fear", "food"),
    ("OAF_Sad/OAF_bar_sad.wav", "OAF", "sad", "bar"),
    ("OAF_Pleasant_surprise/OAF_chain_ps.wav", "OAF", "pleasant_surprise", "chain"),
    ("YAF_pleasant_surprised/YAF_bar_ps.wav", "YAF", "pleasant_surprise", "bar"),
    ("YAF_fear/YAF_neat_fear.wav", "YAF", "fear", "neat"),
    ("TESS Toronto emotional speech set data/YAF_disgust/YAF_dodge_disgust.wav", "YAF", "disgust", "dodge"),
])
def test_names(name, speaker, raw, word):
    utt = Tess("unused").parse(PurePosixPath(name))
    assert (utt.speaker, utt.raw_label, utt.extra["word"], utt.gender) == (speaker, raw, word, "female")
    assert utt.extra["age"] == {"OAF": 64, "YAF": 26}[speaker]


@pytest.mark.parametrize("suffix", ["ps", "pleasant_surprise", "pleasant_surprised", "Pleasant_surprise"])
def test_pleasant_surprise_spellings(suffix):
    assert Tess("unused").parse(PurePosixPath(f"OAF_{suffix}/OAF_mode_{suffix}.wav")).raw_label == "pleasant_surprise"


@pytest.mark.parametrize(("name", "needle"), [
    ("OAF_neutral/OA_bite_neutral.wav", "expected OAF or YAF"),
    ("YAF_angry/YAF_bar_bored.wav", "unknown TESS emotion 'bored'"),
    ("YAF_angry/readme.wav", "<OAF|YAF>_<word>_<emotion>"),
    ("YAF_sad/YAF_bar_angry.wav", "inside folder 'YAF_sad'"),
    ("OAF_angry/YAF_bar_angry.wav", "inside folder 'OAF_angry'"),
])
def test_bad_names(name, needle):
    with pytest.raises(SchemeError) as err:
        Tess("unused").parse(PurePosixPath(name))
    assert needle in err.value.reason


def test_detect_canonical_nesting(tmp_path, write_wav):
    for wrapper in ("TESS Toronto emotional speech set data", "tess toronto emotional speech set data"):
        write_wav(tmp_path / wrapper / "OAF_Fear" / "OAF_back_fear.wav")
    assert Tess.detect(tmp_path)
    assert Tess.detect(tmp_path / "TESS Toronto emotional speech set data")
    (tmp_path / "other" / "Actor_01").mkdir(parents=True)
    assert not Tess.detect(tmp_path)  # a folder of several corpora is not TESS itself
