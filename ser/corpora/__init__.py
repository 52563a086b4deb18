"""Corpus registry: every module in this package that defines a `Corpus` subclass registers itself.

Adding a corpus is adding one module here; nothing else changes.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from ser.corpora.base import Corpus, CorpusRootError, Excluded, Quarantine, SchemeError, Utterance, check_root

__all__ = ["Corpus", "CorpusRootError", "Excluded", "Quarantine", "SchemeError", "Utterance", "REGISTRY", "get", "detect"]

REGISTRY: dict[str, type[Corpus]] = {}


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Corpus) and obj is not Corpus and obj.__module__ == module.__name__:
                REGISTRY[obj.name] = obj


def get(name: str) -> type[Corpus]:
    """The corpus class registered under `name`, or a KeyError listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown corpus {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


# Generic layouts match almost anything, so they are tried last: CASIA (it needs a known speaker
# folder) before the folder-per-emotion layout, which also matches CASIA.
_DETECT_LAST = ("casia", "folder")


def detect(root: Path | str) -> list[tuple[str, Path]]:
    """Corpora found at `root`: the root itself if it matches one layout, else each child folder that does.

    Returns (corpus name, corpus root) pairs; raises FileNotFoundError for a missing folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder {root} does not exist")

    order = sorted(REGISTRY, key=lambda n: (n in _DETECT_LAST, _DETECT_LAST.index(n) if n in _DETECT_LAST else 0, n))
    specific = [n for n in order if n not in _DETECT_LAST]

    def match(folder: Path, names: list[str] = order) -> str | None:
        return next((name for name in names if REGISTRY[name].detect(folder)), None)

    if name := match(root, specific):
        return [(name, root)]
    children = sorted(p for p in root.iterdir() if p.is_dir())
    # A generic layout at the root (e.g. CASIA's speaker folders) wins over reading each of its
    # children as a corpus of its own, unless a child is a specific corpus.
    if not any(match(child, specific) for child in children) and (name := match(root)):
        return [(name, root)]
    return [(name, child) for child in children if (name := match(child))]


_discover()
