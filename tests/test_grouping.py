"""Group keys for `ser predict --group-by`: speakers from real corpus file names, folders, and none."""
from __future__ import annotations

from pathlib import Path

import pytest

from ser.grouping import GROUP_MODES, group_keys, voice_folder

# real file names of each corpus, in the publishers' layouts
NAMED = {
    "/data/ravdess/Actor_07/03-01-05-01-01-01-07.wav": "ravdess:07",
    "/data/tess/YAF_angry/YAF_back_angry.wav": "tess:YAF",
    "/data/tess/OAF_Pleasant_surprise/OAF_bath_ps.wav": "tess:OAF",
    "/data/crema/AudioWAV/1001_DFA_ANG_XX.wav": "cremad:1001",
    "/data/emodb/wav/03a01Fa.wav": "emodb:03",
    "/data/savee/DC/a01.wav": "savee:DC",
    "/data/savee/ALL/JE_sa01.wav": "savee:JE",
    "/data/esd/0011/Angry/0011_000351.wav": "esd:0011",
}
OTHER = "/home/me/recordings/clip 1.wav"


def test_speaker_mode_reads_each_corpus_scheme():
    assert group_keys(list(NAMED), "speaker") == list(NAMED.values())
    assert group_keys([OTHER], "speaker") == [None]


def test_auto_uses_the_speaker_else_the_folder():
    keys = group_keys([*NAMED, OTHER], "auto")
    assert keys[:-1] == list(NAMED.values())
    assert keys[-1] == f"folder:{Path('/home/me/recordings')}"


def test_folder_mode_skips_emotion_named_folders():
    keys = group_keys(["/d/spk01/angry/a.wav", "/d/spk01/Sad/b.wav", "/d/TESS/YAF_angry/YAF_back_angry.wav",
                       "/d/session3/c.wav"], "folder")
    assert keys == [f"folder:{Path('/d/spk01')}", f"folder:{Path('/d/spk01')}", f"folder:{Path('/d/TESS')}",
                    f"folder:{Path('/d/session3')}"]
    assert voice_folder("/d/spk01/pleasant-surprise/x.wav") == Path("/d/spk01")


def test_none_and_bad_mode():
    assert group_keys(list(NAMED), "none") == [None] * len(NAMED)
    assert set(GROUP_MODES) == {"auto", "speaker", "folder", "none"}
    with pytest.raises(ValueError, match="--group-by must be one of"):
        group_keys([OTHER], "voice")
