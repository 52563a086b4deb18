import shutil
from collections import Counter
from pathlib import PurePosixPath

import pytest

from ser.corpora import SchemeError
from ser.corpora.savee import Savee

# Per speaker: 15 of each emotion except neutral (30).
CODES = {"a": 15, "d": 15, "f": 15, "h": 15, "n": 30, "sa": 15, "su": 15}
RAW = {"a": "anger", "d": "disgust", "f": "fear", "h": "happiness", "n": "neutral", "sa": "sadness", "su": "surprise"}


def names(speaker_prefix: str = ""):
    return [f"{speaker_prefix}{code}{i:02d}.wav" for code, n in CODES.items() for i in range(1, n + 1)]


def parse_all(corpus):
    return [corpus.parse(PurePosixPath(p.relative_to(corpus.root).as_posix())) for p in corpus.files()]


def populate(root, relnames, write_wav):
    """One real WAV, copied under every name (writing 240 files one by one is slow)."""
    template = write_wav(root.parent / f"{root.name}-template.wav", seconds=0.05)
    for rel in relnames:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, root / rel)
    return root


@pytest.fixture
def all_layout(tmp_path, write_wav):
    return populate(tmp_path / "savee_all", [f"ALL/{n}" for spk in ("DC", "KL") for n in names(f"{spk}_")], write_wav)


@pytest.fixture
def speaker_layout(tmp_path, write_wav):
    rels = [f"AudioData/{spk}/{n}" for spk in ("JE", "JK") for n in names()]
    return populate(tmp_path / "savee_spk", rels, write_wav)


def test_all_layout(all_layout):
    utts = parse_all(Savee(all_layout))
    assert len(utts) == 240
    assert Counter(u.speaker for u in utts) == {"DC": 120, "KL": 120}
    assert Counter(u.raw_label for u in utts) == {RAW[c]: 2 * n for c, n in CODES.items()}
    assert {u.gender for u in utts} == {"male"} and Savee.language == "en"
    assert Savee.detect(all_layout) and Savee.detect(all_layout / "ALL")


def test_speaker_folder_layout(speaker_layout):
    utts = parse_all(Savee(speaker_layout))
    assert Counter(u.speaker for u in utts) == {"JE": 120, "JK": 120}
    assert Counter(u.raw_label for u in utts)["neutral"] == 60
    assert Savee.detect(speaker_layout) and Savee.detect(speaker_layout / "AudioData")


@pytest.mark.parametrize(("name", "speaker", "raw", "sentence"), [
    ("ALL/DC_sa01.wav", "DC", "sadness", "sa01"),
    ("ALL/JE_su15.wav", "JE", "surprise", "su15"),
    ("ALL/JK_a03.wav", "JK", "anger", "a03"),
    ("KL/n30.wav", "KL", "neutral", "n30"),
    ("AudioData/DC/h07.wav", "DC", "happiness", "h07"),
    ("DC/DC_f02.wav", "DC", "fear", "f02"),
])
def test_names(name, speaker, raw, sentence):
    utt = Savee("unused").parse(PurePosixPath(name))
    assert (utt.speaker, utt.raw_label, utt.extra["sentence"]) == (speaker, raw, sentence)


@pytest.mark.parametrize(("name", "needle"), [
    ("ALL/DC_s01.wav", "<a|d|f|h|n|sa|su><NN>"),
    ("ALL/XX_a01.wav", "<a|d|f|h|n|sa|su><NN>"),
    ("ALL/a01.wav", "no speaker"),
    ("JE/DC_a01.wav", "speaker DC inside folder JE"),
])
def test_bad_names(name, needle):
    with pytest.raises(SchemeError) as err:
        Savee("unused").parse(PurePosixPath(name))
    assert needle in err.value.reason


def test_detect_rejects_other_layouts(tmp_path, write_wav):
    write_wav(tmp_path / "DC" / "notes.wav")
    write_wav(tmp_path / "ALL" / "03a01Fa.wav")
    assert not Savee.detect(tmp_path)
