"""Features of many files for `ser predict FOLDER`: chunks of files, in worker processes or in this one.

A worker gets the artefact's `Featuriser` (feature config, audio options, speech gate; never the model,
so it never imports TensorFlow) once, through the pool's initializer, which also loads the feature
extractors (openSMILE, the encoder) once, and returns for each file of a chunk
its raw feature row or the reason it has none; the parent scales and calls the model (ser.predict), where a
speaker group's rows meet. Workers are started with `spawn`: forking a process that has CTranslate2 or
TensorFlow threads running can deadlock. Each worker's encoder threads are the cores divided by the workers,
and its BLAS runs single-threaded (ser.features: tiny products on busy cores are faster that way).
"""
from __future__ import annotations

import dataclasses
import multiprocessing
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.audio import AudioError
from ser.encoder import available_cores
from ser.predictor import Featuriser
from ser.vad import NoSpeech

IN_FLIGHT_PER_WORKER = 2  # chunks queued per worker: enough to keep it busy, few enough to bound memory


@dataclass
class FileFeatures:
    """One file's outcome in a worker: its raw feature row, or status `no_speech` / `error` and why."""

    raw: np.ndarray | None
    status: str = "ok"
    error: str = ""


def default_workers() -> int:
    """Every core this process may use."""
    return available_cores()


def worker_featuriser(featuriser: Featuriser, workers: int) -> Featuriser:
    """`featuriser` with its encoder's threads set so that `workers` processes use at most this machine's
    cores (an explicit `features.encoder.threads` is lowered to that share, never raised)."""
    enc = featuriser.features.encoder
    if enc is None:
        return featuriser
    share = max(1, available_cores() // max(1, workers))
    threads = share if not enc.threads else min(int(enc.threads), share)
    features = dataclasses.replace(featuriser.features, encoder=dataclasses.replace(enc, threads=threads))
    return dataclasses.replace(featuriser, features=features)


def featurise_chunk(featuriser: Featuriser, paths: Sequence[Path | str]) -> list[FileFeatures]:
    """Decode, speech check and raw features of each file; the encoder runs over the chunk's clips batched."""
    out: list[FileFeatures | None] = [None] * len(paths)
    audios, where = [], []
    for i, path in enumerate(paths):
        try:
            audio = featuriser.load(path)
            featuriser.speech(audio)
        except (AudioError, ValueError) as err:
            out[i] = FileFeatures(None, "no_speech" if isinstance(err, NoSpeech) else "error", str(err))
            continue
        audios.append(audio)
        where.append(i)
    for i, raw in zip(where, featuriser.raw_many(audios)):
        out[i] = FileFeatures(None, "error", str(raw)) if isinstance(raw, Exception) else FileFeatures(raw)
    return out  # type: ignore[return-value]


_WORKER: Featuriser | None = None


def _init_worker(featuriser: Featuriser) -> None:
    global _WORKER
    import signal

    from ser.features import limit_blas_threads
    from ser.jit_cache import load_librosa_kernels

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    limit_blas_threads(1)
    load_librosa_kernels()  # workers starting together must not compile librosa's numba cache at once
    warm_up(featuriser)
    _WORKER = featuriser


def warm_up(featuriser: Featuriser) -> None:
    """Load the feature extractors (librosa's filter banks, openSMILE, the encoder) once, on a second of quiet noise."""
    noise = np.random.default_rng(0).standard_normal(featuriser.sample_rate).astype(np.float32) * 0.01
    featuriser.raw_many([noise, noise])


def _work(paths: list[str]) -> list[FileFeatures]:
    assert _WORKER is not None, "the pool's initializer did not run"
    return featurise_chunk(_WORKER, paths)


def featurise_chunks(featuriser: Featuriser, chunks: Sequence[Sequence[Path | str]], workers: int = 1
                     ) -> Iterator[tuple[int, list[FileFeatures]]]:
    """(chunk number, its files' features) for each chunk, as they finish: in this process, in order, for
    `workers` 1 (or a single chunk), else in a pool of min(workers, chunks) spawned processes with at most
    IN_FLIGHT_PER_WORKER chunks per worker queued at a time (memory stays flat however many chunks)."""
    workers = max(1, min(int(workers), len(chunks)))
    if workers == 1:
        own = worker_featuriser(featuriser, 1)
        for n, chunk in enumerate(chunks):
            yield n, featurise_chunk(own, chunk)
        return
    if featuriser.features.encoder is not None:  # missing or altered weights: a clear error here, not a broken pool
        from ser.encoder import resolve_weights

        resolve_weights(featuriser.features.encoder)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(worker_featuriser(featuriser, workers),))
    todo = deque(enumerate(chunks))
    running: dict[Future, int] = {}
    try:
        while todo or running:
            while todo and len(running) < workers * IN_FLIGHT_PER_WORKER:
                n, chunk = todo.popleft()
                running[pool.submit(_work, [str(p) for p in chunk])] = n
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=running.__getitem__):
                yield running.pop(future), future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["FileFeatures", "default_workers", "featurise_chunk", "featurise_chunks", "warm_up", "worker_featuriser"]
