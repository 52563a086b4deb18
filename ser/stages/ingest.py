"""Stage ingest@NAME: read one configured corpus (or any folder) into a manifest plus a quarantine with reasons."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ser import EMOTIONS
from ser.console import DEFAULT_PARAMS, ParamsOpt, StageError, console, progress, run, stdout
from ser.params import Params


def _jobs(params: Params, name: str | None, root: Path | None, corpus: str | None) -> list[tuple]:
    """(name, format, root, options, label map) per corpus to read."""
    from ser import corpora as registry

    if name:
        if name not in params.corpora:
            raise StageError(f"corpus {name!r} is not configured in params.yaml (corpora: {', '.join(params.corpora)})")
        entry = params.corpora[name]
        jobs = [(name, corpus or entry.format, root or entry.root, entry.options, params.label_map(name))]
    else:
        if root is None:
            raise StageError("give --root DIR (or --name of a corpus in params.yaml)")
        if not root.is_dir():
            raise StageError(f"corpus folder {root} does not exist")
        found = [(corpus, root)] if corpus else registry.detect(root)
        if not found:
            raise StageError(f"no known corpus layout under {root}; pass --corpus (one of: "
                             f"{', '.join(sorted(registry.REGISTRY))})")
        jobs = []
        for fmt, sub in found:
            if fmt not in registry.REGISTRY:
                raise StageError(f"unknown corpus {fmt!r}; known: {', '.join(sorted(registry.REGISTRY))}")
            if fmt not in params.labels:
                raise StageError(f"no label map labels.{fmt} in params.yaml")
            jobs.append((fmt, fmt, sub, {}, params.labels[fmt]))
    for job_name, _, job_root, _, _ in jobs:
        if not Path(job_root).is_dir():
            raise StageError(f"corpus {job_name}: root folder {job_root} does not exist")
    return jobs


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="ingest summary")
    for col in ("corpus", "files", "kept", "speakers", "quarantined", *EMOTIONS):
        table.add_column(col, justify="left" if col in ("corpus", "quarantined") else "right")
    for name, s in summary.items():
        quarantined = ", ".join(f"{k} {v}" for k, v in s["quarantined"].items()) or "0"
        table.add_row(name, str(s["files"]), str(s["kept"]), str(s["speakers"]), quarantined,
                      *(str(s["emotions"][e]) for e in EMOTIONS))
    return table


def main(params: Params, out: Path, name: str | None = None, root: Path | None = None,
         corpus: str | None = None) -> dict[str, Any]:
    """Write OUT (kept rows), OUT.quarantine.parquet and OUT.summary.json; return the summary."""
    from ser import corpora as registry
    from ser.ingest import concat, ingest_corpus, summary
    from ser.io import write_json, write_parquet

    jobs = _jobs(params, name, root, corpus)
    results = []
    with progress() as bar:
        for job_name, fmt, job_root, options, labels in jobs:
            n = sum(1 for _ in registry.get(fmt)(job_root, options).files())
            task = bar.add_task(f"ingest {job_name} ({fmt})", total=n)
            results.append(ingest_corpus(
                job_root, fmt, labels, name=job_name, options=options,
                min_duration_s=params.ingest.min_duration_s, max_duration_s=params.ingest.max_duration_s,
                workers=params.ingest.workers, on_file=lambda t=task: bar.advance(t)))
    result = concat(results)
    meta = {"corpora": {j[0]: {"format": j[1], "root": str(j[2])} for j in jobs}}
    stem = out.name.removesuffix(".parquet")
    write_parquet(result.manifest, out, meta)
    quarantine_path = out.with_name(stem + ".quarantine.parquet")
    write_parquet(result.quarantine, quarantine_path, meta)
    s = summary(result)
    write_json(s, out.with_name(stem + ".summary.json"))
    stdout.print(summary_table(s))
    if len(result.quarantine):
        console.print(f"{len(result.quarantine)} file(s) quarantined with reasons in {quarantine_path}")
    return s


def command(
    out: Annotated[Path, typer.Option(help="manifest Parquet; quarantine goes beside it as FILE.quarantine.parquet")],
    root: Annotated[Optional[Path], typer.Option(help="corpus folder, or a folder holding several corpora")] = None,
    corpus: Annotated[Optional[str], typer.Option(help="corpus format (see `ser corpora`); recognised from the layout when omitted")] = None,
    name: Annotated[Optional[str], typer.Option(help="a corpus configured in params.yaml (its format, root, options, labels)")] = None,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Ingest corpora from their original layout into one manifest (and a quarantine with reasons)."""
    run(main, params, out, name=name, root=root, corpus=corpus)


if __name__ == "__main__":
    typer.run(command)
