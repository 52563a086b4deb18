"""ser.audio: every format/rate/channel layout loads to the same mono float32 16 kHz; bad audio raises AudioError."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
import soundfile as sf

from ser.audio import AudioError, AudioInfo, decode, load_audio, probe, sha1_file

SR = 16000


def sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("subtype", "sr", "channels"),
    [
        ("PCM_U8", 16000, 1),
        ("PCM_16", 16000, 1),
        ("PCM_24", 16000, 1),
        ("PCM_32", 16000, 1),
        ("FLOAT", 16000, 1),
        ("PCM_16", 16000, 2),
        ("PCM_16", 16000, 6),
        ("PCM_16", 8000, 1),
        ("PCM_24", 96000, 2),
        ("FLOAT", 44100, 1),
    ],
)
def test_formats_load_to_mono_float32_16k(tmp_path, subtype, sr, channels):
    seconds = 0.5
    tone = sine(440, sr, seconds)
    data = np.repeat(tone[:, None], channels, axis=1)
    path = tmp_path / f"x_{subtype}_{sr}_{channels}.wav"
    sf.write(path, data, sr, subtype=subtype)

    audio = load_audio(path, SR)

    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - int(seconds * SR)) <= 1
    assert np.isfinite(audio).all()
    assert abs(peak_hz(audio, SR) - 440) <= 4  # within 2 FFT bins (2 Hz per bin at 0.5 s)
    assert 0.45 < np.max(np.abs(audio)) < 0.55  # amplitude survives decoding and resampling


def test_stereo_downmix_is_mean_of_channels(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.uniform(-0.5, 0.5, size=(1600, 2)).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, data, SR, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, SR), data.mean(axis=1), atol=1e-7)


def test_mono_at_target_rate_is_bit_exact(tmp_path):
    x = sine(300, SR, 0.2)
    path = tmp_path / "f.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    assert np.array_equal(load_audio(path, SR), x)


def test_other_target_rate(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, sine(440, SR, 1.0), SR)
    out = load_audio(path, 22050)
    assert abs(len(out) - 22050) <= 1
    assert abs(peak_hz(out, 22050) - 440) <= 2


def test_flac_and_file_like_and_bytes(tmp_path):
    x = sine(440, 8000, 0.5)
    path = tmp_path / "a.flac"
    sf.write(path, x, 8000)
    from_path = load_audio(path, SR)
    with open(path, "rb") as fh:
        from_fh = load_audio(fh, SR)
    from_bytes = decode(path.read_bytes(), SR, name="upload.flac")
    assert abs(len(from_path) - SR // 2) <= 1
    assert np.array_equal(from_path, from_fh) and np.array_equal(from_path, from_bytes)


# --- unusable audio -------------------------------------------------------------------------------

def _wav_bytes(x: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def test_truncated_wav_reads_the_frames_present(tmp_path):
    # libsndfile trusts the file size over the header's data size: a cut WAV reads fewer frames, no error.
    full = _wav_bytes(sine(440, SR, 1.0))
    path = tmp_path / "cut.wav"
    path.write_bytes(full[: 44 + 2 * 8000])
    audio = load_audio(path, SR)
    assert len(audio) == 8000
    assert probe(path).frames == 8000


def test_header_only_wav_raises(tmp_path):
    full = _wav_bytes(sine(440, SR, 1.0))
    path = tmp_path / "hdr.wav"
    path.write_bytes(full[:44])  # header claims 32000 bytes of data, none present
    with pytest.raises(AudioError, match="zero frames") as err:
        load_audio(path)
    assert "hdr.wav" in str(err.value)
    with pytest.raises(AudioError, match="zero frames"):
        probe(path)


def test_zero_frame_wav_raises(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), SR)
    with pytest.raises(AudioError, match=r"empty\.wav: empty audio \(zero frames\)"):
        load_audio(path)
    with pytest.raises(AudioError, match="zero frames"):
        probe(path)


def test_zero_byte_file_raises(tmp_path):
    path = tmp_path / "zero.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"zero\.wav: empty file \(0 bytes\)"):
        load_audio(path)
    with pytest.raises(AudioError, match="empty file"):
        probe(path)
    with pytest.raises(AudioError, match="empty upload"):
        decode(b"")


def test_text_file_named_wav_raises(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    with pytest.raises(AudioError, match=r"notes\.wav: unreadable, not a supported audio file"):
        load_audio(path)
    with pytest.raises(AudioError, match="unreadable"):
        probe(path)
    with pytest.raises(AudioError, match=r"upload\.wav: unreadable"):
        decode(b"garbage" * 50, name="upload.wav")


def test_missing_file_and_directory_raise(tmp_path):
    with pytest.raises(AudioError, match="file not found"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="not a regular file"):
        probe(tmp_path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_raise(tmp_path, bad):
    x = sine(440, SR, 0.1)
    x[[10, 20]] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: 2 non-finite samples"):
        load_audio(path)


def test_min_duration(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, sine(440, SR, 0.05), SR)
    assert len(load_audio(path, min_duration_s=0.05)) == 800
    with pytest.raises(AudioError, match=r"short\.wav: too short \(0\.050 s"):
        load_audio(path, min_duration_s=0.1)


def test_bad_arguments_are_value_errors(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, sine(440, SR, 0.1), SR)
    with pytest.raises(ValueError, match="normalize"):
        load_audio(path, normalize="loud")
    with pytest.raises(ValueError, match="sample_rate"):
        load_audio(path, 0)
    with pytest.raises(ValueError, match="trim_db"):
        load_audio(path, trim_db=-5)


# --- trim and normalisation -------------------------------------------------------------------

def test_trim_removes_leading_and_trailing_silence(tmp_path):
    speech = sine(440, SR, 0.5)
    x = np.concatenate([np.zeros(SR // 2, np.float32), speech, np.zeros(SR // 2, np.float32)])
    path = tmp_path / "padded.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    untrimmed = load_audio(path)
    trimmed = load_audio(path, trim_db=40)
    assert len(untrimmed) == len(x)
    # librosa decides per centred 2048-sample frame (hop 512): a frame touching the tone counts as
    # sound, so up to ~one frame of silence survives on each side; the 0.5 s pads are gone.
    assert len(speech) <= len(trimmed) <= len(speech) + 2 * 2048
    loud = np.flatnonzero(np.abs(trimmed) > 0.01)
    assert loud[0] <= 2048 and len(trimmed) - 1 - loud[-1] <= 2048


def test_trim_of_all_silence_keeps_zeros_or_raises(tmp_path):
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros(SR // 4, np.float32), SR)
    out = load_audio(path, trim_db=30, normalize="peak")
    assert out.dtype == np.float32 and not np.any(out)


def test_peak_normalisation(tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(path, sine(440, SR, 0.3, amp=0.05), SR, subtype="FLOAT")
    out = load_audio(path, normalize="peak")
    assert abs(float(np.max(np.abs(out))) - 1.0) <= 1e-6


@pytest.mark.parametrize("target", [-23.0, -12.0])
def test_rms_normalisation_hits_target(tmp_path, target):
    path = tmp_path / "tone.wav"
    sf.write(path, sine(440, SR, 0.3, amp=0.05), SR, subtype="FLOAT")
    out = load_audio(path, normalize="rms", target_rms_dbfs=target)
    rms_db = 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    assert abs(rms_db - target) < 1e-3


@pytest.mark.parametrize("mode", ["peak", "rms"])
def test_silence_stays_zeros(tmp_path, mode):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(1600, np.float32), SR)
    out = load_audio(path, normalize=mode)
    assert out.dtype == np.float32 and len(out) == 1600 and not np.any(out)


# --- probe and hashing ----------------------------------------------------------------------------

def test_probe_reads_header(tmp_path):
    path = tmp_path / "p.wav"
    sf.write(path, np.zeros((44100, 2), np.float32), 44100, subtype="PCM_24")
    info = probe(path)
    assert info == AudioInfo(sample_rate=44100, channels=2, frames=44100, duration_s=1.0,
                             format="WAV", subtype="PCM_24")
    flac = tmp_path / "p.flac"
    sf.write(flac, np.zeros(8000, np.float32), 8000)
    info = probe(flac)
    assert (info.format, info.subtype, info.frames, info.duration_s) == ("FLAC", "PCM_16", 8000, 1.0)


def test_probe_file_like_keeps_position(tmp_path):
    buf = io.BytesIO(_wav_bytes(sine(440, SR, 0.25)))
    assert probe(buf).frames == 4000
    assert buf.tell() == 0
    assert len(load_audio(buf)) == 4000


def test_sha1_file_matches_hashlib(tmp_path):
    path = tmp_path / "blob.bin"
    data = np.random.default_rng(1).bytes(3 * 1024 + 17)
    path.write_bytes(data)
    expected = hashlib.sha1(data).hexdigest()
    assert sha1_file(path) == expected
    assert sha1_file(path, chunk=1000) == expected  # chunk boundaries do not matter
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha1_file(empty) == hashlib.sha1(b"").hexdigest()
