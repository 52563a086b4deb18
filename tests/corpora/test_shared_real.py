"""Every corpus parser over the real files in ../shared/corpora, checked against MANIFEST.tsv.

The expected speakers, emotions and genders are derived here from the manifest's `path` column with
each corpus's published naming scheme and speaker tables, independently of the parsers, so the
shared corpora can grow without touching this file.
"""
from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import soundfile as sf
import yaml

from ser import corpora
from ser.audio import load_audio
from ser.ingest import ingest_corpus

pytestmark = pytest.mark.shared

CORPORA = ("ravdess", "tess", "emodb", "cremad", "savee", "casia", "esd")
PARAMS = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())

RAVDESS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad",
           "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised"}
TESS = {"ps": "pleasant_surprise", "pleasant_surprise": "pleasant_surprise", "pleasant_surprised": "pleasant_surprise"}
EMODB = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness", "N": "neutral"}
# EmoDB's speaker table (Burkhardt et al., 2005): 03 10 11 12 15 male, 08 09 13 14 16 female.
EMODB_MALE = {"03", "10", "11", "12", "15"}
CREMAD = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
SAVEE = {"a": "anger", "d": "disgust", "f": "fear", "h": "happiness", "n": "neutral", "sa": "sadness", "su": "surprise"}
# CASIA: two female (liuchanhg, zhaoquanyin) and two male (wangzhe, ZhaoZuoxiang) speakers.
CASIA_FEMALE = {"liuchanhg", "zhaoquanyin"}
# ESD README speaker table: female 0001-0003, 0007, 0009, 0015-0019; the others male.
ESD_FEMALE = {"0001", "0002", "0003", "0007", "0009", "0015", "0016", "0017", "0018", "0019"}


def cremad_demographics(root: Path) -> dict[str, tuple[str, int]]:
    with (root / "cremad" / "VideoDemographics.csv").open(newline="", encoding="utf-8-sig") as fh:
        return {r["ActorID"]: (r["Sex"].lower(), int(r["Age"])) for r in csv.DictReader(fh)}


def expected(corpus: str, rel: PurePosixPath, root: Path) -> tuple[str, str, str]:
    """(speaker, raw label, gender) of one manifest path, read with the corpus's naming scheme."""
    stem, parts = rel.stem, rel.parts
    if corpus == "ravdess":
        fields = stem.split("-")
        return fields[6], RAVDESS[fields[2]], "male" if int(fields[6]) % 2 else "female"
    if corpus == "tess":
        speaker, _, emotion = stem.split("_", 2)
        return speaker, TESS.get(emotion.lower(), emotion.lower()), "female"
    if corpus == "emodb":
        return stem[:2], EMODB[stem[5]], "male" if stem[:2] in EMODB_MALE else "female"
    if corpus == "cremad":
        actor, _, emotion, _ = stem.split("_")
        return actor, CREMAD[emotion], cremad_demographics(root)[actor][0]
    if corpus == "savee":
        speaker, code = stem.split("_")
        return speaker, SAVEE[code.rstrip("0123456789")], "male"
    if corpus == "casia":
        speaker = parts[-3]
        return speaker, parts[-2].lower(), "female" if speaker in CASIA_FEMALE else "male"
    if corpus == "esd":
        speaker = parts[-3]
        return speaker, parts[-2].lower(), "female" if speaker in ESD_FEMALE else "male"
    raise AssertionError(corpus)


@pytest.fixture(scope="module")
def listing(shared_corpora) -> list[dict[str, str]]:
    with (shared_corpora / "MANIFEST.tsv").open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def corpus_rows(listing, corpus: str) -> list[dict[str, str]]:
    return [r for r in listing if r["path"].split("/")[0] == corpus]


def corpus_root(shared_corpora: Path, corpus: str) -> Path:
    return shared_corpora / corpus


_INGESTED: dict[str, object] = {}


def ingested(shared_corpora: Path, corpus: str):
    if corpus not in _INGESTED:
        _INGESTED[corpus] = ingest_corpus(corpus_root(shared_corpora, corpus), corpus, PARAMS["labels"][corpus],
                                          name=corpus, workers=1)
    return _INGESTED[corpus]


@pytest.mark.parametrize("corpus", CORPORA)
def test_parser_matches_manifest(shared_corpora, listing, corpus):
    """Every listed file parses; per-speaker, per-emotion and per-gender counts match the naming scheme."""
    rows = corpus_rows(listing, corpus)
    assert rows, f"MANIFEST.tsv lists no {corpus} file"
    parser = corpora.get(corpus)(corpus_root(shared_corpora, corpus))
    root_prefix = PurePosixPath(corpus)
    found = sorted(PurePosixPath(p.relative_to(parser.root).as_posix()) for p in parser.files())
    listed = sorted(PurePosixPath(r["path"]).relative_to(root_prefix) for r in rows)
    assert found == listed
    parsed = [parser.parse(rel) for rel in listed]
    want = [expected(corpus, rel, shared_corpora) for rel in listed]
    assert Counter(u.speaker for u in parsed) == Counter(w[0] for w in want)
    assert Counter(u.raw_label for u in parsed) == Counter(w[1] for w in want)
    assert [(u.speaker, u.raw_label, u.gender) for u in parsed] == want


@pytest.mark.parametrize("corpus", CORPORA)
def test_ingest_accounts_for_every_file(shared_corpora, listing, corpus):
    """rows + quarantine = files; only labels params map to null are quarantined; channels as listed."""
    result = ingested(shared_corpora, corpus)
    rows = corpus_rows(listing, corpus)
    assert result.files == len(rows)
    nulls = {raw for raw, e in PARAMS["labels"][corpus].items() if e is None}
    want_quarantined = sorted(str(PurePosixPath(r["path"]).relative_to(corpus))
                              for r in rows if expected(corpus, PurePosixPath(r["path"]), shared_corpora)[1] in nulls)
    assert sorted(result.quarantine["path"]) == want_quarantined
    assert set(result.quarantine["kind"]) <= {"label"}
    m = result.manifest
    assert (m["speaker"].str.split(":").str[0] == corpus).all()
    listed_channels = {str(PurePosixPath(r["path"]).relative_to(corpus)): int(r["channels"]) for r in rows}
    assert dict(zip(m["path"], m["channels"])) == {p: listed_channels[p] for p in m["path"]}
    per_speaker = Counter(f"{corpus}:{expected(corpus, PurePosixPath(r['path']), shared_corpora)[0]}"
                          for r in rows if str(PurePosixPath(r["path"]).relative_to(corpus)) not in want_quarantined)
    assert Counter(m["speaker"]) == per_speaker


def test_cremad_gender_and_age_from_demographics(shared_corpora):
    table = cremad_demographics(shared_corpora)
    m = ingested(shared_corpora, "cremad").manifest
    assert len(m)
    for speaker, gender, meta in zip(m["speaker"], m["gender"], m["meta"]):
        actor = speaker.split(":")[1]
        assert (gender, json.loads(meta)["age"]) == table[actor]
    assert set(m["gender"]) == {"male", "female"}


def test_savee_speakers_are_male(shared_corpora):
    m = ingested(shared_corpora, "savee").manifest
    assert set(m["gender"]) == {"male"}
    assert set(m["speaker"]) <= {"savee:DC", "savee:JE", "savee:JK", "savee:KL"}


def test_ravdess_stereo_files_are_down_mixed(shared_corpora, listing):
    stereo = [r["path"] for r in corpus_rows(listing, "ravdess") if int(r["channels"]) == 2]
    assert "ravdess/Actor_01/03-01-02-01-01-02-01.wav" in stereo and "ravdess/Actor_20/03-01-03-01-02-01-20.wav" in stereo
    for rel in stereo:
        data, sr = sf.read(shared_corpora / rel, dtype="float32", always_2d=True)
        assert data.shape[1] == 2
        mono = load_audio(shared_corpora / rel, sample_rate=sr)
        assert mono.ndim == 1 and len(mono) == len(data)
        np.testing.assert_allclose(mono, data.mean(axis=1), atol=1e-6)


def test_esd_transcript_text_kept_in_meta(shared_corpora):
    lines = {}
    for speaker_txt in (shared_corpora / "esd").glob("*/*.txt"):
        for line in speaker_txt.read_text(encoding="utf-8-sig").splitlines():
            utt, text, _ = line.split("\t")
            lines[utt] = text.strip()
    m = ingested(shared_corpora, "esd").manifest
    assert len(m)
    for path, meta in zip(m["path"], m["meta"]):
        assert json.loads(meta)["text"] == lines[PurePosixPath(path).stem]
    one = m[m["path"] == "0020/Neutral/0020_000001.wav"]
    if len(one):
        assert json.loads(one["meta"].iloc[0])["text"] == "The nine the eggs, I keep."
