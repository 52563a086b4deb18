"""ESD (Zhou et al., 2021, "Seen and unseen emotional style transfer for voice conversion with a new
emotional speech dataset", ICASSP): `0011/Angry/0011_000351.wav`.

20 speakers: 0001-0010 Mandarin, 0011-0020 English, 350 parallel utterances in each of 5
emotions. Some copies add a split folder (`0011/Angry/train/...`) or a wrapper folder
(`Emotion Speech Dataset/0011/...`); emotion folder names are read case-insensitively.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from ser.corpora.base import Corpus, SchemeError, Utterance

EMOTIONS = ("angry", "happy", "neutral", "sad", "surprise")
SPLITS = ("train", "test", "evaluation")
# Speaker -> gender, from the table in the corpus README.
GENDERS = {
    "0001": "female", "0002": "female", "0003": "female", "0004": "male", "0005": "male",
    "0006": "male", "0007": "female", "0008": "male", "0009": "female", "0010": "male",
    "0011": "male", "0012": "male", "0013": "male", "0014": "male", "0015": "female",
    "0016": "female", "0017": "female", "0018": "female", "0019": "female", "0020": "male",
}
NAME = re.compile(r"^(\d{4})_(\d{6})$")
SPEAKER = re.compile(r"^\d{4}$")


class Esd(Corpus):
    name = "esd"
    language = "zh+en"  # shown in `ser corpora`; each utterance carries its speaker's language
    description = "ESD: 10 Mandarin + 10 English speakers, 5 emotions, 350 parallel utterances each"

    def parse(self, relpath: PurePosixPath) -> Utterance:
        match = NAME.match(relpath.stem)
        if not match:
            raise SchemeError(f"{relpath.name!r} is not <speaker>_<utterance> (e.g. 0011_000351.wav)")
        file_speaker, utterance = match.groups()
        folders = list(relpath.parent.parts)
        split = folders.pop() if folders and folders[-1].lower() in SPLITS else None
        if not folders or folders[-1].lower() not in EMOTIONS:
            raise SchemeError(f"{relpath}: expected <speaker>/<emotion>/[<split>/]<file> with emotion one of "
                              f"{', '.join(e.capitalize() for e in EMOTIONS)}")
        emotion = folders.pop().lower()
        speaker = folders[-1] if folders else (self.root.name if SPEAKER.match(self.root.name) else file_speaker)
        if speaker != file_speaker:
            raise SchemeError(f"file of speaker {file_speaker} inside speaker folder {speaker}")
        if speaker not in GENDERS:
            raise SchemeError(f"unknown ESD speaker {speaker!r}, expected 0001..0020")
        extra = {"utterance": utterance}
        if split:
            extra["split"] = split.lower()
        return Utterance(speaker=speaker, raw_label=emotion, gender=GENDERS[speaker],
                         language="zh" if int(speaker) <= 10 else "en", extra=extra)

    @classmethod
    def detect(cls, root: Path) -> bool:
        def is_speaker(folder: Path) -> bool:
            return (folder.is_dir() and bool(SPEAKER.match(folder.name))
                    and any(p.is_dir() and p.name.lower() in EMOTIONS for p in folder.iterdir()))

        return is_speaker(root) or any(is_speaker(p) for p in root.iterdir())
