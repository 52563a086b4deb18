"""EmoDB (Burkhardt et al., 2005, "A database of German emotional speech"): `wav/SSTTTEV.wav`.

SS is the speaker (10 actors), TTT the text (a01..b10), E the emotion letter (W anger,
L boredom, E disgust, A fear/Angst, F happiness, T sadness, N neutral) and V the version letter.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from ser.corpora.base import Corpus, SchemeError, Utterance

EMOTION_CODES = {
    "W": "anger", "L": "boredom", "E": "disgust", "A": "fear",
    "F": "happiness", "T": "sadness", "N": "neutral",
}
# Speaker -> (gender, age), from the corpus documentation.
SPEAKERS = {
    "03": ("male", 31), "08": ("female", 34), "09": ("female", 21), "10": ("male", 32), "11": ("male", 26),
    "12": ("male", 30), "13": ("female", 32), "14": ("female", 35), "15": ("male", 25), "16": ("female", 31),
}
NAME = re.compile(r"^(\d{2})([ab]\d{2})([A-Z])([a-z])$")


class Emodb(Corpus):
    name = "emodb"
    language = "de"
    description = "EmoDB: 10 German actors (5 f, 5 m), 10 sentences x 7 emotions incl. boredom"

    def parse(self, relpath: PurePosixPath) -> Utterance:
        match = NAME.match(relpath.stem)
        if not match:
            raise SchemeError(f"{relpath.name!r} is not SSTTTEV (speaker, text a01..b10, emotion letter, "
                              f"version letter; e.g. 03a01Fa.wav)")
        speaker, text, emotion, version = match.groups()
        if emotion not in EMOTION_CODES:
            raise SchemeError(f"unknown EmoDB emotion letter {emotion!r}, expected one of {''.join(EMOTION_CODES)}")
        if speaker not in SPEAKERS:
            raise SchemeError(f"unknown EmoDB speaker {speaker!r}, expected one of {', '.join(SPEAKERS)}")
        gender, age = SPEAKERS[speaker]
        return Utterance(speaker=speaker, raw_label=EMOTION_CODES[emotion], gender=gender,
                         extra={"text": text, "version": version, "age": age})

    @classmethod
    def detect(cls, root: Path) -> bool:
        def names_match(folder: Path) -> bool:
            return any(p.is_file() and NAME.match(p.stem) and p.stem[5] in EMOTION_CODES for p in folder.iterdir())

        return names_match(root) or ((root / "wav").is_dir() and names_match(root / "wav"))
