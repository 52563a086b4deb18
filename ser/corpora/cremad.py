"""CREMA-D (Cao et al., 2014, IEEE Trans. Affective Computing): `AudioWAV/ActorID_Sentence_Emotion_Level.wav`.

91 actors (1001-1091) read 12 sentences in 6 emotions; the level is LO, MD, HI or XX
(unspecified). Gender and age come from the corpus's `VideoDemographics.csv`
(ActorID, Age, Sex, Race, Ethnicity), looked up at `options["demographics"]`, else at the
root or the root's parent; without it, gender is "unknown".
"""
from __future__ import annotations

import csv
import re
from pathlib import Path, PurePosixPath
from typing import Any

from ser.corpora.base import Corpus, SchemeError, Utterance

EMOTION_CODES = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified", "X": "unspecified"}
SENTENCES = {
    "IEO": "It's eleven o'clock", "TIE": "That is exactly what happened", "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about", "TAI": "The airplane is almost full", "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock", "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket", "ITS": "I think I've seen this before",
    "TSI": "The surface is slick", "WSI": "We'll stop in a couple of minutes",
}
NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$")
DEMOGRAPHICS = "VideoDemographics.csv"


class Cremad(Corpus):
    name = "cremad"
    language = "en"
    description = "CREMA-D: 91 actors of varied age and ethnicity, 12 sentences x 6 emotions, 4 levels"

    def __init__(self, root: Path | str, options: dict[str, Any] | None = None):
        super().__init__(root, options)
        self._speakers: dict[str, tuple[str, int | None]] | None = None

    def _demographics_path(self) -> Path | None:
        if self.options.get("demographics"):
            path = Path(self.options["demographics"])
            path = path if path.is_absolute() else self.root / path
            if not path.is_file():
                raise FileNotFoundError(f"cremad: options.demographics {path} does not exist")
            return path
        for folder in (self.root, self.root.parent):
            if (folder / DEMOGRAPHICS).is_file():
                return folder / DEMOGRAPHICS
        return None

    def speakers(self) -> dict[str, tuple[str, int | None]]:
        """ActorID -> (gender, age), read once; empty when no demographics file is found."""
        if self._speakers is None:
            table: dict[str, tuple[str, int | None]] = {}
            path = self._demographics_path()
            if path is not None:
                with path.open(newline="", encoding="utf-8-sig") as fh:
                    for row in csv.DictReader(fh):
                        sex = row["Sex"].strip().lower()
                        age = row.get("Age", "").strip()
                        table[row["ActorID"].strip()] = (sex if sex in ("male", "female") else "unknown",
                                                         int(age) if age.isdigit() else None)
            self._speakers = table
        return self._speakers

    def parse(self, relpath: PurePosixPath) -> Utterance:
        match = NAME.match(relpath.stem)
        if not match:
            raise SchemeError(f"{relpath.name!r} is not ActorID_Sentence_Emotion_Level (e.g. 1001_DFA_ANG_XX.wav)")
        actor, sentence, emotion, level = match.groups()
        if sentence not in SENTENCES:
            raise SchemeError(f"unknown CREMA-D sentence code {sentence!r}, expected one of {', '.join(SENTENCES)}")
        if emotion not in EMOTION_CODES:
            raise SchemeError(f"unknown CREMA-D emotion code {emotion!r}, expected one of {', '.join(EMOTION_CODES)}")
        if level not in LEVELS:
            raise SchemeError(f"unknown CREMA-D level {level!r}, expected LO, MD, HI or XX")
        gender, age = self.speakers().get(actor, ("unknown", None))
        extra: dict[str, Any] = {"sentence": sentence, "level": LEVELS[level]}
        if age is not None:
            extra["age"] = age
        return Utterance(speaker=actor, raw_label=EMOTION_CODES[emotion], gender=gender, extra=extra)

    @classmethod
    def detect(cls, root: Path) -> bool:
        if root.name == "AudioWAV" or (root / "AudioWAV").is_dir():
            return True
        return any(p.is_file() and NAME.match(p.stem) and p.stem.split("_")[2] in EMOTION_CODES
                   for p in root.iterdir())
