"""What every corpus module provides: find its audio files and read labels from their paths."""
from __future__ import annotations

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
        """
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.name}: corpus root {self.root} is not a folder")
        for path in sorted(self.root.rglob("*")):
            if path.suffix.lower() in AUDIO_EXTENSIONS and (path.is_file() or path.is_symlink()):
                yield path

    def parse(self, relpath: PurePosixPath) -> Utterance:
        """Labels for one file, from its path relative to the root; raise SchemeError/Excluded."""
        raise NotImplementedError

    @classmethod
    def detect(cls, root: Path) -> bool:
        """Whether `root` looks like this corpus's original layout (cheap: names only)."""
        raise NotImplementedError
