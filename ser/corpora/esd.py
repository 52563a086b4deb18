"""ESD (Zhou et al., 2021, "Seen and unseen emotional style transfer for voice conversion with a new
emotional speech dataset", ICASSP): `0011/Angry/0011_000351.wav`.

20 speakers: 0001-0010 Mandarin, 0011-0020 English, 350 parallel utterances in each of 5
emotions. Some copies add a split folder (`0011/Angry/train/...`) or a wrapper folder
(`Emotion Speech Dataset/0011/...`); emotion folder names are read case-insensitively. Each speaker folder holds a transcript
`<speaker>.txt` (tab-separated: utterance id, text, emotion); its text goes to `extra["text"]`.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

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

    def __init__(self, root: Path | str, options: dict[str, Any] | None = None):
        super().__init__(root, options)
        self._transcripts: dict[Path, dict[str, tuple[str, str]]] = {}

    def transcript(self, folder: Path, speaker: str) -> dict[str, tuple[str, str]]:
        """`<speaker>_<utterance>` -> (text, emotion) from `folder/<speaker>.txt`, read once; empty without one.

        Lines that are not three tab-separated fields are skipped. The English files are UTF-8;
        some copies of the Mandarin ones are GB18030, read as such when UTF-8 fails.
        """
        if folder not in self._transcripts:
            table: dict[str, tuple[str, str]] = {}
            path = folder / f"{speaker}.txt"
            if path.is_file():
                raw = path.read_bytes()
                try:
                    text = raw.decode("utf-8-sig")
                except UnicodeDecodeError:
                    text = raw.decode("gb18030", errors="replace")
                for line in text.splitlines():
                    fields = line.strip().split("\t")
                    if len(fields) == 3 and NAME.match(fields[0].strip()):
                        table[fields[0].strip()] = (fields[1].strip(), fields[2].strip().lower())
            self._transcripts[folder] = table
        return self._transcripts[folder]

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
        line = self.transcript(self.root.joinpath(*folders), speaker).get(relpath.stem)
        if line is not None:
            text, said = line
            if said != emotion:
                raise SchemeError(f"{relpath}: the transcript {speaker}.txt labels it {said!r}, its folder {emotion!r}")
            extra["text"] = text
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
