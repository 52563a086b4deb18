"""SAVEE (Haq & Jackson, 2009; Surrey Audio-Visual Expressed Emotion): `DC/a01.wav` or `ALL/DC_a01.wav`.

Four male British-English speakers (DC, JE, JK, KL), 120 utterances each. The code before the
number is the emotion: a anger, d disgust, f fear, h happiness, n neutral, sa sadness,
su surprise. The original `AudioData/<SPK>/` layout and the flat `ALL/<SPK>_<code>NN.wav`
copy are both read.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from ser.corpora.base import Corpus, SchemeError, Utterance

SPEAKERS = ("DC", "JE", "JK", "KL")
EMOTION_CODES = {
    "a": "anger", "d": "disgust", "f": "fear", "h": "happiness",
    "n": "neutral", "sa": "sadness", "su": "surprise",
}
NAME = re.compile(r"^(?:(DC|JE|JK|KL)_)?(sa|su|a|d|f|h|n)(\d{2})$")


class Savee(Corpus):
    name = "savee"
    language = "en"
    description = "SAVEE: 4 male British-English speakers, 7 emotions, 120 utterances each"

    def parse(self, relpath: PurePosixPath) -> Utterance:
        match = NAME.match(relpath.stem)
        if not match:
            raise SchemeError(f"{relpath.name!r} is not [DC|JE|JK|KL_]<a|d|f|h|n|sa|su><NN> "
                              f"(e.g. DC_a01.wav, sa01.wav)")
        prefix, code, number = match.groups()
        folder = relpath.parent.name
        if prefix and folder in SPEAKERS and folder != prefix:
            raise SchemeError(f"file of speaker {prefix} inside folder {folder}")
        speaker = prefix or folder
        if speaker not in SPEAKERS:
            raise SchemeError(f"{relpath}: no speaker; expected ALL/<DC|JE|JK|KL>_<code>NN.wav "
                              f"or <DC|JE|JK|KL>/<code>NN.wav")
        return Utterance(speaker=speaker, raw_label=EMOTION_CODES[code], gender="male",
                         extra={"sentence": f"{code}{number}"})

    @classmethod
    def detect(cls, root: Path) -> bool:
        def names_match(folder: Path, prefixed: bool) -> bool:
            return any(p.is_file() and (m := NAME.match(p.stem)) and bool(m.group(1)) == prefixed
                       for p in folder.iterdir())

        if names_match(root, prefixed=True):
            return True
        for child in ("ALL", "AudioData"):
            if (root / child).is_dir() and cls.detect(root / child):
                return True
        return any((root / spk).is_dir() and names_match(root / spk, prefixed=False) for spk in SPEAKERS)
