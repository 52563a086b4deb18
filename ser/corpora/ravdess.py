"""RAVDESS (Livingstone & Russo, 2018): `Actor_NN/MM-VC-EE-II-SS-RR-AA.wav`.

Fields: modality (03 audio-only), vocal channel (01 speech, 02 song), emotion, intensity,
statement, repetition, actor. Odd actors are male, even actors female.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from ser.corpora.base import Corpus, Excluded, SchemeError, Utterance

EMOTION_CODES = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised",
}
VOCAL_CHANNELS = {"01": "speech", "02": "song"}
INTENSITIES = {"01": "normal", "02": "strong"}
NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


class Ravdess(Corpus):
    name = "ravdess"
    language = "en"
    description = "RAVDESS: 24 North-American actors, 8 emotions incl. calm, speech and song"

    def parse(self, relpath: PurePosixPath) -> Utterance:
        match = NAME.match(relpath.stem)
        if not match:
            raise SchemeError(f"{relpath.name!r} is not MM-VC-EE-II-SS-RR-AA")
        modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
        if emotion not in EMOTION_CODES:
            raise SchemeError(f"unknown RAVDESS emotion code {emotion!r}")
        if channel not in VOCAL_CHANNELS:
            raise SchemeError(f"unknown RAVDESS vocal channel {channel!r}")
        if modality == "02":
            raise SchemeError("modality 02 is video-only")
        vocal = VOCAL_CHANNELS[channel]
        keep = self.options.get("vocal_channels", ["speech"])
        if vocal not in keep:
            raise Excluded(f"vocal channel {vocal!r} not in corpora.options.vocal_channels {keep}")
        folder = relpath.parent.name
        if folder.startswith("Actor_") and folder != f"Actor_{actor}":
            raise SchemeError(f"file of actor {actor} inside folder {folder}")
        return Utterance(
            speaker=actor,
            raw_label=EMOTION_CODES[emotion],
            gender="male" if int(actor) % 2 else "female",
            extra={"vocal_channel": vocal, "intensity": INTENSITIES.get(intensity, intensity),
                   "statement": statement, "repetition": repetition},
        )

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any(p.is_dir() and re.fullmatch(r"Actor_\d{2}", p.name) for p in root.iterdir())
