"""Stage features@NAME: pooled and log-mel feature tables of one corpus, chunk by chunk, resumable.

`build` plans the chunks, extracts those not already finished through `map_chunks` and sums up;
in-process that map is serial (`python -m ser.stages.features`, tests); the DVC stage runs
`python -m flows.features`, which passes a Prefect fan-out over a process pool or Dask instead.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ser.console import DEFAULT_PARAMS, ParamsOpt, run
from ser.params import Params
from ser.retry import PermanentError

MapChunks = Callable[[list, Any, dict, Any, Path], Iterable[dict[str, Any]]]
log = logging.getLogger(__name__)


def serial_map(todo: list, rows: Any, roots: dict[str, Path], settings: Any, out: Path) -> Iterator[dict[str, Any]]:
    """Extract the chunks one after the other in this process."""
    from ser.feature_table import run_chunk

    for chunk in todo:
        yield run_chunk(chunk, rows.loc[[u for u, _, _ in chunk.rows]], roots, settings, out)


class TablesBusy(PermanentError):
    """Another run is writing the same feature tables."""


@contextmanager
def writer_lock(out_dir: Path, corpora: Iterable[str]) -> Iterator[None]:
    """Hold `out_dir/.ser-lock-<corpus>` (in .dvcignore) for every corpus a run writes, so a second run on the
    same tables (two shells, or a stage still running after the `dvc` that started it was killed) stops with a
    clear error instead of overwriting this run's parts with features of another config."""
    from filelock import FileLock, Timeout

    out_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as held:
        for corpus in sorted(set(corpora)):
            lock = FileLock(out_dir / f".ser-lock-{corpus}")
            try:
                held.enter_context(lock.acquire(timeout=0))
            except Timeout:
                raise TablesBusy(f"another run is writing the {corpus} features under {out_dir} (it holds "
                                 f"{lock.lock_file}): let it finish or stop it, then run again") from None
        yield


def foreign_parts(out_dir: Path, chunks: list) -> list[str]:
    """Planned chunks whose part file is missing or holds another config's key: after a run has extracted
    every chunk, a non-empty answer means some other process wrote into the tables meanwhile."""
    from ser.feature_table import chunk_done

    return [c.name for c in chunks if not chunk_done(c, out_dir)]


def share_cores(settings: Any, workers: int) -> Any:
    """Fix the encoder's `threads: 0` to this machine's cores // workers, so parallel chunks don't
    oversubscribe the cores (threads are not part of the feature hash)."""
    from dataclasses import replace

    enc = settings.features.encoder
    if enc is None or enc.threads:
        return settings
    from ser.encoder import effective_threads

    threads = effective_threads(enc, workers)
    return replace(settings, features=replace(settings.features, encoder=replace(enc, threads=threads)))


def build(params: Params, manifest_path: Path, out: Path, corpus: str | None = None,
          map_chunks: MapChunks = serial_map, logger: Any = log) -> dict[str, Any]:
    """Extract every chunk not already finished, drop stale parts; return the summary and the quarantine."""
    import pandas as pd

    from ser.feature_table import (FeatureSettings, chunk_done, chunk_quarantine, plan_chunks, read_features,
                                   stale_parts, stale_temp_files)

    start = time.perf_counter()
    manifest = pd.read_parquet(manifest_path)
    if corpus:
        manifest = manifest[manifest["corpus"] == corpus]
    with writer_lock(out, [corpus] if corpus else manifest["corpus"].astype(str)):
        for path in stale_temp_files(out, corpus):  # left by a killed run: never read, but never kept either
            logger.info("removing temp file %s of an interrupted run", path)
            path.unlink(missing_ok=True)
        settings = share_cores(FeatureSettings.from_params(params), params.runner.workers)
        chunks = plan_chunks(manifest, settings, params.runner.chunk_size)
        todo = [c for c in chunks if not chunk_done(c, out)]
        logger.info("%d chunks planned, %d already done, %d to extract", len(chunks), len(chunks) - len(todo),
                    len(todo))
        by_id = manifest.set_index("utt_id", drop=False)
        done_rows = 0
        for i, result in enumerate(map_chunks(todo, by_id, params.corpus_roots(), settings, out), start=1):
            done_rows += result["utterances"]
            logger.info("chunk %d/%d done: %s (%d rows, %.1f s); %.1f utterances/s", i, len(todo),
                        result["chunk"], result["rows"], result["seconds"], done_rows / (time.perf_counter() - start))
        foreign = foreign_parts(out, chunks)
        if foreign:  # a writer that took no lock (another version of ser, a copy of the tables run by hand)
            raise TablesBusy(f"{len(foreign)} of {len(chunks)} parts under {out} do not hold this run's features "
                             f"after it extracted them ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''})"
                             ": another process wrote them meanwhile; make sure it has stopped, then run again")
        for path in stale_parts(out, chunks):
            if corpus is None or f"corpus={corpus}/" in path.as_posix():
                logger.info("removing stale part %s", path)
                path.unlink()
        quarantine = chunk_quarantine(out, chunks)
        pooled = read_features(out / "pooled", corpus=corpus, columns=["utt_id", "augmented"])
    summary = {
        "corpus": corpus or "all", "chunks": len(chunks), "extracted_chunks": len(todo),
        "utterances": int((~pooled["augmented"]).sum()), "augmented_rows": int(pooled["augmented"].sum()),
        "quarantined": len(quarantine), "feature_hash": settings.features.config_hash(),
        "seconds": round(time.perf_counter() - start, 2),
    }
    logger.info("features: %s", summary)
    return {"summary": summary, "quarantine": quarantine}


def main(params: Params, corpus: str | None = None, manifest: Path = Path("data/interim/manifest.parquet"),
         out: Path = Path("data/features"), metrics: Path = Path("metrics/features"),
         runner: Callable[..., dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run `build` (or `runner`, same signature) and write the summary (a DVC metric) and the quarantine table."""
    from ser.features import feature_config
    from ser.io import write_json, write_parquet

    feature_config(params)  # FeatureConfig's own checks (fmax vs Nyquist, contrast bands) before any work
    result = (runner or build)(params, manifest, out, corpus)
    name = corpus or "all"
    # run-dependent figures (chunks extracted this time, seconds) are logged, not DVC metrics:
    # a resumed run must not read as a change in `dvc metrics diff`
    stable = {k: v for k, v in result["summary"].items() if k not in ("extracted_chunks", "seconds")}
    write_json(stable, metrics / f"{name}.json")
    write_parquet(result["quarantine"], out / "quarantine" / f"{name}.parquet")
    return stable


def command(
    corpus: Annotated[Optional[str], typer.Option(help="one configured corpus (default: all)")] = None,
    manifest: Annotated[Path, typer.Option(help="manifest (or one corpus's slice)")] = Path("data/interim/manifest.parquet"),
    out: Annotated[Path, typer.Option(help="feature tables folder")] = Path("data/features"),
    metrics: Annotated[Path, typer.Option(help="folder of per-corpus summaries")] = Path("metrics/features"),
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Extract the feature tables in this process, one chunk after another (the DVC stage fans out via Prefect)."""
    run(main, params, corpus, manifest, out, metrics)


if __name__ == "__main__":
    typer.run(command)
