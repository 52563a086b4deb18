"""What every corpus module provides: find its audio files and read labels from their paths."""
from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")


class Quarantine(Exception):
    """A file that cannot be used; `kind` groups reasons in summaries (scheme, excluded, label, audio, duplicate)."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class CorpusRootError(FileNotFoundError):
    """A configured corpus root that cannot be used: missing, not a folder, a symlink loop, or holding no audio."""


def check_root(root: Path | str, name: str = "") -> Path:
    """`root` if it is a folder; CorpusRootError saying which of missing / symlink loop / not a folder otherwise."""
    root = Path(root)
    what = f"corpus {name}: root folder {root}" if name else f"corpus folder {root}"
    try:
        st = os.stat(root)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CorpusRootError(f"{what} is a symlink loop (its links never reach a folder)") from None
        if root.is_symlink():
            raise CorpusRootError(f"{what} is a broken symlink (to {os.readlink(root)}, which does not exist)") from None
        raise CorpusRootError(f"{what} does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise CorpusRootError(f"{what} is not a folder")
    return root


class SchemeError(Quarantine):
    """A path outside the corpus's naming scheme."""

    def __init__(self, reason: str):
        super().__init__("scheme", reason)


class Excluded(Quarantine):
    """A valid file that params choose not to keep (e.g. RAVDESS song when only speech is kept)."""

    def __init__(self, reason: str):
        super().__init__("excluded", reason)


@dataclass(frozen=True)
class Utterance:
    """Labels read from one file's path. `speaker` is corpus-local; the ingest prefixes the corpus name."""

    speaker: str
    raw_label: str
    gender: str = "unknown"  # male | female | unknown
    language: str | None = None  # None: the corpus default
    extra: dict[str, Any] = field(default_factory=dict)


class Corpus:
    """Base class: subclasses set `name`, `language`, and implement `parse` and `detect`.

    `options` come from params (`corpora.<name>.options`), e.g. which RAVDESS vocal channels to keep.
    """

    name: ClassVar[str]
    language: ClassVar[str] = "unknown"
    description: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = (".wav",)

    def __init__(self, root: Path | str, options: dict[str, Any] | None = None):
        self.root = Path(root)
        self.options = dict(options or {})

    def files(self) -> Iterator[Path]:
        """Every audio-looking file under the root, recursively, in a stable order.

        Files with an audio extension this corpus does not use are listed too, so the
        ingest can quarantine them rather than skip them silently.
        Raises CorpusRootError for a root that is missing, a symlink loop or not a folder, and for a
        root with no audio file under it (a mistyped root must not pass as an empty corpus).
        """
        check_root(self.root, self.name)
        found = 0
        for path in sorted(self.root.rglob("*")):
            if path.suffix.lower() in AUDIO_EXTENSIONS and (path.is_file() or path.is_symlink()):
                found += 1
                yield path
        if not found:
            raise CorpusRootError(f"corpus {self.name}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) under root "
                                  f"folder {self.root}; is the root right?")

    def parse(self, relpath: PurePosixPath) -> Utterance:
        """Labels for one file, from its path relative to the root; raise SchemeError/Excluded."""
        raise NotImplementedError

    @classmethod
    def detect(cls, root: Path) -> bool:
        """Whether `root` looks like this corpus's original layout (cheap: names only)."""
        raise NotImplementedError
