"""Group keys for speaker-adaptive normalisation at prediction time (`ser predict --group-by`).

A model trained with `normalize.mode: speaker` z-scores each speaker's clips by that speaker's own
statistics; at prediction time the same needs a key saying which clips share a voice:

- `speaker`: the speaker a recognised corpus naming scheme gives (`ravdess:07` for
  `Actor_07/03-01-05-01-01-01-07.wav`); a file outside every scheme gets no group;
- `folder`: the file's parent folder (one recording session, one speaker's uploads), or the folder
  above it when the parent is named after an emotion (`spk01/angry/x.wav` groups under `spk01`):
  standardising an emotion's folder by its own statistics would subtract the very emotion;
- `auto` (default): the speaker where a scheme is recognised, otherwise the folder;
- `none`: no groups, every clip uses the training data's global statistics.

Groups smaller than the model's `normalize.min_group_size` fall back to the global statistics
(`GroupNormalizer`), so a lone file is never normalised by itself.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

GROUP_MODES = ("auto", "speaker", "folder", "none")
# generic layouts match almost any path; the folder-per-emotion layout names no speaker at all
_LAST = ("casia",)
_SKIP = ("folder",)


def _corpus_order() -> list[str]:
    from ser.corpora import REGISTRY

    names = [n for n in sorted(REGISTRY) if n not in _SKIP]
    return [n for n in names if n not in _LAST] + [n for n in _LAST if n in names]


class SpeakerResolver:
    """`speaker(path)`: '<corpus>:<speaker>' from the first corpus scheme the path's last 1-3 parts match."""

    def __init__(self) -> None:
        self._order = _corpus_order()
        self._corpora: dict[tuple[str, Path], object] = {}

    def _corpus(self, name: str, root: Path):
        from ser.corpora import REGISTRY

        key = (name, root)
        if key not in self._corpora:
            self._corpora[key] = REGISTRY[name](root)
        return self._corpora[key]

    def speaker(self, path: Path | str) -> str | None:
        from ser.corpora import Quarantine

        path = Path(path).absolute()
        for name in self._order:
            for depth in (1, 2, 3):
                if depth > len(path.parts) - 1:
                    break
                root = path.parents[depth - 1]
                rel = PurePosixPath(*path.parts[-depth:])
                try:
                    utterance = self._corpus(name, root).parse(rel)
                except (Quarantine, ValueError, KeyError, IndexError, OSError):
                    continue
                return f"{name}:{utterance.speaker}"
        return None


def voice_folder(path: Path | str) -> Path:
    """The folder that stands for a file's voice: its parent, or the grandparent when the parent is an emotion's."""
    from ser import EMOTIONS
    from ser.corpora.folder import EMOTION_WORDS, normalise_label

    parent = Path(path).absolute().parent
    name = normalise_label(parent.name)
    words = EMOTION_WORDS | set(EMOTIONS)
    if name in words or name.split("_")[-1] in words:  # `angry`, `Pleasant_surprise`, TESS's `YAF_angry`
        return parent.parent
    return parent


def group_keys(paths: Sequence[Path | str], mode: str = "auto") -> list[str | None]:
    """One group key per path (None: no group, global statistics) for `mode` in GROUP_MODES."""
    if mode not in GROUP_MODES:
        raise ValueError(f"--group-by must be one of {', '.join(GROUP_MODES)}, not {mode!r}")
    if mode == "none":
        return [None] * len(paths)
    resolver = SpeakerResolver() if mode in ("auto", "speaker") else None
    keys: list[str | None] = []
    for path in paths:
        speaker = resolver.speaker(path) if resolver else None
        if speaker is None and mode in ("auto", "folder"):
            keys.append(f"folder:{voice_folder(path)}")
        else:
            keys.append(speaker)
    return keys


__all__ = ["GROUP_MODES", "SpeakerResolver", "group_keys", "voice_folder"]
