import pytest

from ser import corpora
from ser.corpora import REGISTRY, detect


def test_registry_has_every_corpus():
    assert set(REGISTRY) == {"ravdess", "tess", "cremad", "savee", "emodb", "esd", "casia", "folder"}
    for name, cls in REGISTRY.items():
        assert cls.name == name and cls.description
        assert corpora.get(name) is cls
    with pytest.raises(KeyError, match="known: casia"):
        corpora.get("iemocap")


@pytest.mark.shared
def test_detect_shared_folder(shared_corpora, shared_manifest):
    # every top folder holding audio is one corpus, named for its format in the shared layout
    assert detect(shared_corpora) == [(name, shared_corpora / name) for name in sorted(set(shared_manifest["corpus"]))]


@pytest.mark.shared
@pytest.mark.parametrize("name", ["ravdess", "tess", "emodb", "cremad", "savee", "casia", "esd"])
def test_detect_single_shared_corpus(shared_corpora, name):
    assert detect(shared_corpora / name) == [(name, shared_corpora / name)]


LAYOUTS = {
    "savee": ["ALL/DC_a01.wav", "ALL/JE_sa02.wav"],
    "savee_speakers": ["DC/a01.wav", "KL/su03.wav"],
    "esd": ["0011/Angry/0011_000351.wav", "0001/Sad/0001_001051.wav"],
    "esd_nested": ["Emotion Speech Dataset/0011/Angry/0011_000351.wav"],
    "casia": ["liuchanhg/angry/201.wav", "wangzhe/fear/202.wav"],
    "folder": ["angry/a.wav", "Neutral/b.wav"],
    "folder_speakers": ["anna/happy/1.wav", "ben/sad/1.wav"],
    "cremad": ["AudioWAV/1001_DFA_ANG_XX.wav", "AudioWAV/1002_IEO_NEU_XX.wav"],
    "tess": ["TESS Toronto emotional speech set data/OAF_Fear/OAF_back_fear.wav"],
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_detect_layouts(tmp_path, write_wav, layout):
    for name in LAYOUTS[layout]:
        write_wav(tmp_path / name, seconds=0.05)
    expected = layout.split("_")[0]
    if layout == "esd_nested":  # the wrapper folder is the corpus root: its child folders are speakers
        assert detect(tmp_path) == [(expected, tmp_path / "Emotion Speech Dataset")]
    else:
        assert detect(tmp_path) == [(expected, tmp_path)]


def test_detect_several_corpora_side_by_side(tmp_path, write_wav):
    write_wav(tmp_path / "casia" / "wangzhe" / "angry" / "201.wav")
    write_wav(tmp_path / "mine" / "spk1" / "happy" / "1.wav")
    write_wav(tmp_path / "savee" / "ALL" / "DC_a01.wav")
    assert detect(tmp_path) == [("casia", tmp_path / "casia"), ("folder", tmp_path / "mine"),
                                ("savee", tmp_path / "savee")]


def test_detect_nothing(tmp_path, write_wav):
    write_wav(tmp_path / "misc" / "take1.wav")
    assert detect(tmp_path) == []


def test_detect_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        detect(tmp_path / "missing")
