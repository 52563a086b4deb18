"""TESS (Dupuis & Pichora-Fuller, 2010; doi:10.5683/SP2/E8H2MF): `OAF_<emotion>/OAF_<word>_<emotion>.wav`.

Two female talkers, OAF (older, 64 y) and YAF (younger, 26 y), each saying "Say the word <word>"
in 7 emotions. The canonical download nests the folders one level deeper, under
`TESS Toronto emotional speech set data/`. Emotion spellings vary between folders and files
(`Fear`, `Sad`, `ps`, `Pleasant_surprise`, `pleasant_surprised`); all are read case-insensitively.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from ser.corpora.base import Corpus, SchemeError, Utterance

SPEAKER_AGES = {"OAF": 64, "YAF": 26}
EMOTION_SPELLINGS = {
    "angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy", "neutral": "neutral", "sad": "sad",
    "ps": "pleasant_surprise", "pleasant_surprise": "pleasant_surprise", "pleasant_surprised": "pleasant_surprise",
}
FOLDER = re.compile(r"^(OAF|YAF)_([A-Za-z_]+)$", re.IGNORECASE)


class Tess(Corpus):
    name = "tess"
    language = "en"
    description = "TESS: 2 Canadian-English female talkers (26 y, 64 y), 200 words x 7 emotions"

    def parse(self, relpath: PurePosixPath) -> Utterance:
        parts = relpath.stem.split("_", 2)
        if len(parts) != 3:
            raise SchemeError(f"{relpath.name!r} is not <OAF|YAF>_<word>_<emotion>")
        speaker, word, emotion = parts[0].upper(), parts[1], parts[2].lower()
        if speaker not in SPEAKER_AGES:
            raise SchemeError(f"unknown TESS speaker prefix {parts[0]!r} in {relpath.name!r}, expected OAF or YAF")
        if emotion not in EMOTION_SPELLINGS:
            raise SchemeError(f"unknown TESS emotion {parts[2]!r} in {relpath.name!r}, "
                              f"expected one of {', '.join(EMOTION_SPELLINGS)}")
        raw = EMOTION_SPELLINGS[emotion]
        folder = FOLDER.match(relpath.parent.name)
        if folder:
            f_speaker, f_emotion = folder.group(1).upper(), EMOTION_SPELLINGS.get(folder.group(2).lower())
            if (f_speaker, f_emotion) != (speaker, raw):
                raise SchemeError(f"file {relpath.name!r} ({speaker}, {raw}) inside folder {relpath.parent.name!r}")
        return Utterance(speaker=speaker, raw_label=raw, gender="female",
                         extra={"word": word, "age": SPEAKER_AGES[speaker]})

    @classmethod
    def detect(cls, root: Path) -> bool:
        def has_tess_folders(folder: Path) -> bool:
            return any(p.is_dir() and FOLDER.match(p.name) for p in folder.iterdir())

        if has_tess_folders(root):
            return True
        # One wrapper level (the canonical download), but only when every subfolder is such a
        # wrapper: a folder holding several corpora, one of them TESS, is not itself TESS.
        children = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return bool(children) and all(has_tess_folders(c) for c in children)
