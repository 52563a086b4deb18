"""CASIA Chinese emotional speech corpus (Institute of Automation, Chinese Academy of Sciences, 2005):
`<speaker>/<emotion>/<nnn>.wav`.

Four Mandarin speakers (liuchanhg and zhaoquanyin female, wangzhe and ZhaoZuoxiang male),
6 emotions. Speaker and emotion folders are matched case-insensitively.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from ser.corpora.base import Corpus, SchemeError, Utterance

SPEAKERS = {"liuchanhg": "female", "wangzhe": "male", "zhaoquanyin": "female", "ZhaoZuoxiang": "male"}
EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")
_BY_LOWER = {s.lower(): s for s in SPEAKERS}
NAME = re.compile(r"^\d+$")


class Casia(Corpus):
    name = "casia"
    language = "zh"
    description = "CASIA: 4 Mandarin speakers (2 f, 2 m), 6 emotions"

    def parse(self, relpath: PurePosixPath) -> Utterance:
        if not NAME.match(relpath.stem):
            raise SchemeError(f"{relpath.name!r} is not a numbered CASIA file (e.g. 201.wav)")
        folders = relpath.parent.parts
        if not folders or folders[-1].lower() not in EMOTIONS:
            raise SchemeError(f"{relpath}: expected <speaker>/<emotion>/<nnn>.wav "
                              f"with emotion one of {', '.join(EMOTIONS)}")
        emotion = folders[-1].lower()
        # A single speaker's folder may be the root itself.
        speaker_folder = folders[-2] if len(folders) >= 2 else self.root.name
        speaker = _BY_LOWER.get(speaker_folder.lower())
        if speaker is None:
            raise SchemeError(f"unknown CASIA speaker {speaker_folder!r}, expected one of {', '.join(SPEAKERS)}")
        return Utterance(speaker=speaker, raw_label=emotion, gender=SPEAKERS[speaker], extra={"sentence": relpath.stem})

    @classmethod
    def detect(cls, root: Path) -> bool:
        def is_speaker(folder: Path) -> bool:
            return folder.is_dir() and folder.name.lower() in _BY_LOWER

        return is_speaker(root) or any(is_speaker(p) for p in root.iterdir())
