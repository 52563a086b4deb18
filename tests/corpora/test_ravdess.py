from collections import Counter
from pathlib import PurePosixPath

import pytest

from ser.corpora import Excluded, SchemeError
from ser.corpora.ravdess import Ravdess


def parse_all(corpus):
    return [(p, corpus.parse(PurePosixPath(p.relative_to(corpus.root).as_posix()))) for p in corpus.files()]


@pytest.mark.shared
def test_every_shared_file_parses(shared_corpora, shared_manifest):
    rows = parse_all(Ravdess(shared_corpora / "ravdess"))
    listed = shared_manifest[shared_manifest["corpus"] == "ravdess"]
    assert len(rows) == len(listed)
    # Independent check from MANIFEST.tsv: the actor is the last dash-separated field, the emotion the third.
    fields = listed["name"].str.removesuffix(".wav").str.split("-")
    assert {u.speaker for _, u in rows} == set(fields.str[6])
    for path, utt in rows:
        assert utt.gender == ("male" if int(utt.speaker) % 2 else "female")
        assert path.parent.name == f"Actor_{utt.speaker}"
        assert utt.extra["vocal_channel"] == "speech"
    codes = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad",
             "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised"}
    assert Counter(u.raw_label for _, u in rows) == Counter(codes[c] for c in fields.str[2])
    assert Counter(u.speaker for _, u in rows) == Counter(fields.str[6])


@pytest.mark.parametrize("name", ["Actor_01/03-01-02-01-01-02-01.wav", "Actor_01/03-01-08-01-02-02-01.wav"])
def test_stereo_originals_parse(name):
    utt = Ravdess("unused").parse(PurePosixPath(name))
    assert utt.speaker == "01" and utt.gender == "male"
    assert utt.raw_label == {"02": "calm", "08": "surprised"}[name.split("-")[2]]


def test_fields_go_to_extra():
    utt = Ravdess("unused").parse(PurePosixPath("Actor_02/03-01-06-02-01-02-02.wav"))
    assert (utt.speaker, utt.gender, utt.raw_label) == ("02", "female", "fearful")
    assert utt.extra == {"vocal_channel": "speech", "intensity": "strong", "statement": "01", "repetition": "02"}


def test_song_is_excluded_by_default_and_kept_on_request():
    name = PurePosixPath("Actor_01/03-02-03-01-01-01-01.wav")
    with pytest.raises(Excluded, match="song"):
        Ravdess("unused").parse(name)
    utt = Ravdess("unused", options={"vocal_channels": ["speech", "song"]}).parse(name)
    assert utt.raw_label == "happy" and utt.extra["vocal_channel"] == "song"


@pytest.mark.parametrize(("name", "needle"), [
    ("Actor_01/03-01-09-01-01-01-01.wav", "emotion code '09'"),
    ("foo.wav", "MM-VC-EE-II-SS-RR-AA"),
    ("Actor_02/03-01-01-01-01-01-01.wav", "actor 01 inside folder Actor_02"),
])
def test_bad_names_raise_scheme_error(name, needle):
    with pytest.raises(SchemeError) as err:
        Ravdess("unused").parse(PurePosixPath(name))
    assert err.value.kind == "scheme"
    assert needle in err.value.reason
