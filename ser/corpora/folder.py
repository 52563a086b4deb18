"""Generic folder-per-emotion layout ("bring your own data"): `<emotion>/*.wav` or `<speaker>/<emotion>/*.wav`.

The emotion is the file's immediate folder, lower-cased with spaces and hyphens turned into
underscores; the speaker is the folder above it, or "unknown" when there is none (file names
are never guessed at). An optional `speakers.csv` at the root, with columns
`speaker,gender[,language]`, gives each speaker's gender (male|female|unknown, or m|f) and language.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path, PurePosixPath
from typing import Any

from ser.corpora.base import Corpus, SchemeError, Utterance

EMOTION_WORDS = frozenset({
    "angry", "anger", "disgust", "fear", "fearful", "happy", "happiness", "neutral", "calm",
    "sad", "sadness", "surprise", "surprised", "ps", "pleasant_surprise",
})
GENDERS = {"male": "male", "m": "male", "female": "female", "f": "female", "unknown": "unknown", "": "unknown"}
SPEAKERS_CSV = "speakers.csv"


def normalise_label(folder: str) -> str:
    return re.sub(r"[\s\-]+", "_", folder.strip().lower())


class Folder(Corpus):
    name = "folder"
    description = "Any corpus laid out as <emotion>/ or <speaker>/<emotion>/ folders (optional speakers.csv)"

    def __init__(self, root: Path | str, options: dict[str, Any] | None = None):
        super().__init__(root, options)
        self._speakers: dict[str, tuple[str, str | None]] | None = None

    def speakers(self) -> dict[str, tuple[str, str | None]]:
        """speaker -> (gender, language or None) from `speakers.csv`, read once; empty without one."""
        if self._speakers is None:
            table: dict[str, tuple[str, str | None]] = {}
            path = self.root / SPEAKERS_CSV
            if path.is_file():
                with path.open(newline="", encoding="utf-8-sig") as fh:
                    reader = csv.DictReader(fh)
                    if not reader.fieldnames or not {"speaker", "gender"} <= set(reader.fieldnames):
                        raise ValueError(f"{path}: needs columns speaker,gender[,language], has {reader.fieldnames}")
                    for row in reader:
                        gender = (row["gender"] or "").strip().lower()
                        if gender not in GENDERS:
                            raise ValueError(f"{path}: gender {row['gender']!r} of speaker {row['speaker']!r} "
                                             f"is not male, female or unknown")
                        language = (row.get("language") or "").strip() or None
                        table[row["speaker"].strip()] = (GENDERS[gender], language)
            self._speakers = table
        return self._speakers

    def parse(self, relpath: PurePosixPath) -> Utterance:
        folders = relpath.parent.parts
        if not 1 <= len(folders) <= 2:
            raise SchemeError(f"{relpath}: expected <emotion>/<file> or <speaker>/<emotion>/<file>, "
                              f"found {len(folders)} folder level(s)")
        raw = normalise_label(folders[-1])
        speaker = folders[0] if len(folders) == 2 else "unknown"
        gender, language = self.speakers().get(speaker, ("unknown", None))
        return Utterance(speaker=speaker, raw_label=raw, gender=gender, language=language)

    @classmethod
    def detect(cls, root: Path) -> bool:
        def has_emotion_folders(folder: Path) -> bool:
            return any(p.is_dir() and normalise_label(p.name) in EMOTION_WORDS for p in folder.iterdir())

        return has_emotion_folders(root) or any(p.is_dir() and has_emotion_folders(p) for p in root.iterdir())
