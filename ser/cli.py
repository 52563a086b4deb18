"""The `ser` command line. Heavy libraries (TensorFlow, GX) are imported inside the commands that need them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ser import EMOTIONS

app = typer.Typer(help="Speech emotion recognition: ingest corpora, build features, train and predict.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(stderr=True)
# Tables go to stdout; logs and CI get a wide fixed width instead of rich's 80 columns.
stdout = Console() if Console().is_terminal else Console(width=160)

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read")]


def _params(path: Path):
    from ser.params import ParamsError, load_params

    try:
        return load_params(path)
    except ParamsError as err:
        console.print(f"[red]error:[/] {err}")
        raise typer.Exit(2) from None


def _fail(message: str) -> None:
    console.print(f"[red]error:[/] {message}")
    raise typer.Exit(1)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False, disable=not console.is_terminal and os.environ.get("CI") == "true")


def _summary_table(summary: dict) -> Table:
    table = Table(title="ingest summary")
    for col in ("corpus", "files", "kept", "speakers", "quarantined", *EMOTIONS):
        table.add_column(col, justify="left" if col in ("corpus", "quarantined") else "right")
    for name, s in summary.items():
        quarantined = ", ".join(f"{k} {v}" for k, v in s["quarantined"].items()) or "0"
        table.add_row(name, str(s["files"]), str(s["kept"]), str(s["speakers"]), quarantined,
                      *(str(s["emotions"][e]) for e in EMOTIONS))
    return table


@app.command()
def ingest(
    out: Annotated[Path, typer.Option(help="manifest Parquet; quarantine goes beside it as FILE.quarantine.parquet")],
    root: Annotated[Optional[Path], typer.Option(help="corpus folder, or a folder holding several corpora")] = None,
    corpus: Annotated[Optional[str], typer.Option(help="corpus format (see `ser corpora`); recognised from the layout when omitted")] = None,
    name: Annotated[Optional[str], typer.Option(help="a corpus configured in params.yaml (its format, root, options, labels)")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Ingest corpora from their original layout into one manifest (and a quarantine with reasons)."""
    from ser import corpora as registry
    from ser.ingest import concat, ingest_corpus, summary
    from ser.io import write_json, write_parquet

    p = _params(params)
    jobs: list[tuple[str, str, Path, dict, dict]] = []  # (name, format, root, options, labels)
    if name:
        if name not in p.corpora:
            _fail(f"corpus {name!r} is not configured in {params} (corpora: {', '.join(p.corpora)})")
        entry = p.corpora[name]
        jobs.append((name, corpus or entry.format, root or entry.root, entry.options, p.label_map(name)))
    else:
        if root is None:
            _fail("give --root DIR (or --name of a corpus in params.yaml)")
        if not root.is_dir():
            _fail(f"corpus folder {root} does not exist")
        found = [(corpus, root)] if corpus else registry.detect(root)
        if not found:
            _fail(f"no known corpus layout under {root}; pass --corpus (one of: {', '.join(sorted(registry.REGISTRY))})")
        for fmt, sub in found:
            if fmt not in registry.REGISTRY:
                _fail(f"unknown corpus {fmt!r}; known: {', '.join(sorted(registry.REGISTRY))}")
            if fmt not in p.labels:
                _fail(f"no label map labels.{fmt} in {params}")
            jobs.append((fmt, fmt, sub, {}, p.labels[fmt]))
    for job_name, fmt, job_root, _, _ in jobs:
        if not Path(job_root).is_dir():
            _fail(f"corpus {job_name}: root folder {job_root} does not exist")

    results = []
    with _progress() as progress:
        for job_name, fmt, job_root, options, labels in jobs:
            n = sum(1 for _ in registry.get(fmt)(job_root, options).files())
            task = progress.add_task(f"ingest {job_name} ({fmt})", total=n)
            results.append(ingest_corpus(
                job_root, fmt, labels, name=job_name, options=options,
                min_duration_s=p.ingest.min_duration_s, max_duration_s=p.ingest.max_duration_s,
                workers=p.ingest.workers, on_file=lambda t=task: progress.advance(t)))
    result = concat(results)
    meta = {"corpora": {j[0]: {"format": j[1], "root": str(j[2])} for j in jobs}}
    write_parquet(result.manifest, out, meta)
    quarantine_path = out.with_name(out.name.removesuffix(".parquet") + ".quarantine.parquet")
    write_parquet(result.quarantine, quarantine_path, meta)
    s = summary(result)
    write_json(s, out.with_name(out.name.removesuffix(".parquet") + ".summary.json"))
    stdout.print(_summary_table(s))
    if len(result.quarantine):
        console.print(f"{len(result.quarantine)} file(s) quarantined with reasons in {quarantine_path}")


@app.command(name="corpora")
def list_corpora(params: ParamsOpt = Path("params.yaml")) -> None:
    """List the supported corpus formats and their label maps from params.yaml."""
    from ser import corpora as registry

    p = _params(params) if params.is_file() else None
    table = Table(title="supported corpora")
    for col in ("format", "language", "description", "label map (raw -> emotion)"):
        table.add_column(col)
    for fmt in sorted(registry.REGISTRY):
        cls = registry.REGISTRY[fmt]
        labels = p.labels.get(fmt, {}) if p else {}
        shown = ", ".join(f"{raw}->{emo or 'QUARANTINE'}" for raw, emo in labels.items()) or "(no params.yaml)"
        table.add_row(fmt, cls.language, cls.description, shown)
    stdout.print(table)


@app.command(name="demo-corpus")
def demo_corpus(
    out: Annotated[Optional[Path], typer.Option(help="folder to write (default: demo.out in params.yaml)")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Write the deterministic synthetic corpus (folder-per-emotion layout) that the default run uses."""
    from ser.demo import write_demo_corpus

    d = _params(params).demo
    rows = write_demo_corpus(out or d.out, speakers=d.speakers, utterances_per_emotion=d.utterances_per_emotion,
                             sample_rate=d.sample_rate, seed=d.seed)
    console.print(f"wrote {len(rows)} files for {rows['speaker'].nunique()} speakers to {out or d.out}")


@app.command()
def manifest(
    ingested: Annotated[Path, typer.Option("--in", help="folder of per-corpus ingest Parquet files")] = Path("data/interim/ingest"),
    out: Annotated[Path, typer.Option(help="merged manifest with split and fold")] = Path("data/interim/manifest.parquet"),
    by_corpus: Annotated[Path, typer.Option(help="folder for one manifest slice per corpus (per-corpus stages read these)")] = Path("data/interim/by_corpus"),
    metrics: Annotated[Path, typer.Option(help="split summary JSON (a DVC metric)")] = Path("metrics/manifest.json"),
    plot: Annotated[Optional[Path], typer.Option(help="PNG of utterances per split and emotion")] = Path("plots/splits.png"),
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Merge the configured corpora, drop duplicate audio, and split by speaker."""
    import pandas as pd

    from ser.io import write_json, write_parquet
    from ser.report import split_summary, plot_splits
    from ser.split import build_manifest

    p = _params(params)
    frames, quarantines = [], []
    for name in p.corpora:
        path = ingested / f"{name}.parquet"
        if not path.is_file():
            _fail(f"{path} is missing: run the ingest stage for corpus {name!r} first")
        frames.append(pd.read_parquet(path))
        qpath = ingested / f"{name}.quarantine.parquet"
        if qpath.is_file():
            quarantines.append(pd.read_parquet(qpath))
    try:
        merged, dupes = build_manifest(frames, protocol=p.split.protocol, ratios=p.split.ratios,
                                       test_corpora=p.split.test_corpora, seed=p.seed, dedupe=p.split.drop_duplicates)
    except ValueError as err:
        _fail(str(err))
    quarantine = pd.concat([*quarantines, dupes], ignore_index=True)
    meta = {"split": p.split.model_dump(), "seed": p.seed}
    write_parquet(merged, out, meta)
    for name, part in merged.groupby("corpus", sort=True):
        write_parquet(part.reset_index(drop=True), by_corpus / f"{name}.parquet", meta)
    write_parquet(quarantine, out.with_name(out.name.removesuffix(".parquet") + ".quarantine.parquet"), meta)
    summary = split_summary(merged, quarantine)
    write_json(summary, metrics)
    if plot:
        plot_splits(merged, plot)
    table = Table(title=f"manifest: {len(merged)} utterances, {merged['speaker'].nunique()} speakers")
    for col in ("split", "speakers", "utterances", *EMOTIONS):
        table.add_column(col, justify="right")
    for split, s in summary["splits"].items():
        part = merged[merged["split"] == split]
        table.add_row(split, str(s["speakers"]), str(s["utterances"]), *(str((part["emotion"] == e).sum()) for e in EMOTIONS))
    stdout.print(table)
    if len(dupes):
        console.print(f"{len(dupes)} duplicate file(s) dropped (quarantined with the original's id)")


@app.command()
def validate(
    manifest_path: Annotated[Path, typer.Option("--manifest")] = Path("data/interim/manifest.parquet"),
    features_path: Annotated[Path, typer.Option("--features", help="pooled feature table (hive-partitioned folder)")] = Path("data/features/pooled"),
    report: Annotated[Path, typer.Option(help="human-readable Markdown report, kept whether or not the suites pass")] = Path("reports/validation.md"),
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run the Great Expectations suites on the manifest and the feature table; fail with a readable report."""
    import pandas as pd
    import yaml

    from ser.featurize import FeatureSettings, read_features
    from ser.features import pooled_feature_names
    from ser.validate import validate_features, validate_manifest, write_report

    _params(params)
    raw = yaml.safe_load(params.read_text())
    cfg = raw.get("validate") or {}
    names = pooled_feature_names(FeatureSettings.from_params(raw).features)
    manifest_df = pd.read_parquet(manifest_path)
    # only the configured corpora's partitions: a corpus dropped from params.yaml leaves its part files behind
    features_df = read_features(features_path, corpora=sorted(manifest_df["corpus"].astype(str).unique()))
    extra = [c for c in features_df.columns if c not in names and c not in
             ("utt_id", "corpus", "speaker", "gender", "emotion", "split", "fold", "augmented", "copy", "source")]
    reports = [validate_manifest(manifest_df, cfg), validate_features(features_df.drop(columns=extra), names, cfg,
                                                                        manifest_ids=manifest_df["utt_id"])]
    write_report(reports, report)
    failed = [r for r in reports if not r.success]
    for r in reports:
        console.print(f"{r.table}: {'[green]passed' if r.success else '[red]FAILED'}[/] ({len(r.results)} expectations)")
    if failed:
        for r in failed:
            console.print(r.failure_message())
        _fail(f"validation failed; the full report is {report}")


def _raw_params(params: Path) -> dict:
    import yaml

    _params(params)
    return yaml.safe_load(params.read_text())


@app.command()
def train(
    model: Annotated[str, typer.Option(help="a model name from `models:` in params.yaml")],
    features: Annotated[Path, typer.Option(help="feature tables folder")] = Path("data/features"),
    models_dir: Annotated[Path, typer.Option("--models-dir", help="where trained artefacts go")] = Path("models/zoo"),
    manifest_path: Annotated[Path, typer.Option("--manifest", help="the utterances to train and score on")] = Path("data/interim/manifest.parquet"),
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Train one model on the train speakers (early stopping on val speakers) and score it on test speakers."""
    import pandas as pd

    from ser.evaluate import flat_metrics
    from ser.io import write_json
    from ser.plots import plot_confusion, plot_history, plot_note, write_history_csv
    from ser.train import train_holdout

    raw = _raw_params(params)
    spec = (raw.get("models") or {}).get(model)
    if spec is None:
        _fail(f"model {model!r} is not in params.yaml models: ({', '.join(raw.get('models') or {})})")
    console.print(f"training {model} ({spec['kind']})")
    try:
        artifact, result, history = train_holdout(model, dict(spec), raw, features, pd.read_parquet(manifest_path))
    except ValueError as err:
        _fail(str(err))
    artifact.save(models_dir / model)
    size_mb = sum(f.stat().st_size for f in (models_dir / model).rglob("*") if f.is_file()) / 2**20
    timings = {**result["timings"], "size_mb": round(size_mb, 3)}
    scores = result["scores"]
    flat = {"val": flat_metrics(scores["val"]) if "val" in scores else {}, "test": flat_metrics(scores["test"]), **timings}
    write_json(flat, Path("metrics/models") / f"{model}.json")
    predictions = result.pop("predictions")
    write_json({**result, "timings": timings, "history": history}, Path("reports/models") / f"{model}.json")
    out = Path("plots/models") / model
    plot_confusion(scores["test"]["confusion"], out / "confusion.png",
                   title=f"{model}: test speakers, UAR {scores['test']['uar']:.3f}")
    from ser.io import atomic_path

    with atomic_path(out / "predictions.csv") as tmp:  # actual,predicted per test clip: DVC's confusion template
        predictions["test"].to_csv(tmp, index=False)
    write_history_csv(out / "history.csv", history)
    if plot_history(history, out / "history.png", title=f"{model} training curves") is None:
        plot_note(out / "history.png", f"{model}: no per-epoch history ({spec['kind']} is not trained by epochs)")
    val_uar = scores.get("val", {}).get("uar")
    stdout.print(f"{model}: val UAR {val_uar}, test UAR {scores['test']['uar']}, "
                 f"accuracy {scores['test']['accuracy']}, macro-F1 {scores['test']['macro_f1']}, "
                 f"train {timings['train_s']} s")


@app.command()
def loso(
    model: Annotated[str, typer.Option(help="a model name from `models:` in params.yaml")],
    features: Annotated[Path, typer.Option(help="feature tables folder")] = Path("data/features"),
    manifest_path: Annotated[Path, typer.Option("--manifest", help="the utterances to score")] = Path("data/interim/manifest.parquet"),
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Leave-one-speaker-out over every speaker: mean and spread of UAR, per corpus too."""
    import pandas as pd

    from ser.io import write_json
    from ser.train import train_loso

    raw = _raw_params(params)
    spec = (raw.get("models") or {}).get(model)
    if spec is None:
        _fail(f"model {model!r} is not in params.yaml models:")
    with _progress() as progress:
        task = progress.add_task(f"LOSO {model}", total=None)

        def on_fold(i, n, speaker, uar):
            progress.update(task, total=n, completed=i, description=f"LOSO {model} ({speaker}: UAR {uar:.3f})")

        summary = train_loso(dict(spec), raw, features, pd.read_parquet(manifest_path), on_fold=on_fold)
    write_json({k: v for k, v in summary.items() if k not in ("per_fold", "confusion")}, Path("metrics/loso") / f"{model}.json")
    write_json(summary, Path("reports/loso") / f"{model}.json")
    stdout.print(f"{model} LOSO over {summary['folds']} speakers: UAR {summary['uar_mean']:.3f} +- {summary['uar_std']:.3f}; "
                 f"per corpus {summary['uar_by_corpus']}")


@app.command(name="select-best")
def select_best(
    models_dir: Annotated[Path, typer.Option("--models-dir", help="trained artefacts to choose from")] = Path("models/zoo"),
    best_dir: Annotated[Path, typer.Option("--best", help="where the chosen artefact is copied")] = Path("models/best"),
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Pick the model with the best VALIDATION UAR (never test) into models/best; write the leaderboard."""
    import json
    import shutil

    from ser.evaluate import leaderboard, leaderboard_markdown
    from ser.io import write_json, write_text
    from ser.plots import plot_leaderboard, plot_per_corpus

    raw = _raw_params(params)
    rows, per_corpus = [], {}
    for name in raw.get("models") or {}:
        path = Path("metrics/models") / f"{name}.json"
        if not path.is_file():
            _fail(f"{path} is missing: train {name} first (dvc repro train@{name})")
        m = json.loads(path.read_text())
        rows.append({"model": name, "kind": raw["models"][name]["kind"], "val_uar": m["val"].get("uar"),
                     "test_uar": m["test"]["uar"], "test_accuracy": m["test"]["accuracy"],
                     "test_macro_f1": m["test"]["macro_f1"], "train_s": m["train_s"],
                     "predict_ms_per_clip": m.get("predict_ms_per_clip"), "size_mb": m["size_mb"]})
        per_corpus[name] = {k.removeprefix("uar_"): v for k, v in m["test"].items() if k.startswith("uar_")}
    board = leaderboard(rows)
    best = str(board.iloc[0]["model"])
    target = best_dir
    tmp = best_dir.with_name(f".{best_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(models_dir / best, tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    write_text(leaderboard_markdown(board), Path("reports/leaderboard.md"))
    plot_leaderboard(board, Path("plots/leaderboard.png"))
    plot_per_corpus({m: per_corpus[m] for m in board["model"]}, Path("plots/per_corpus.png"),
                    title="test-speaker UAR per corpus")
    top = {k: (None if isinstance(v, float) and v != v else v) for k, v in board.iloc[0].to_dict().items()}
    write_json(top, Path("metrics/best.json"))
    stdout.print(leaderboard_markdown(board))
    stdout.print(f"best by validation UAR: {best} -> {target}")


@app.command(name="use-corpora")
def use_corpora(
    folder: Annotated[Path, typer.Argument(help="a folder holding one or several corpora in their original layouts")],
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Point params.yaml's `corpora:` at every corpus found under FOLDER (comments are kept)."""
    from ser import corpora as registry
    from ser.params_edit import set_corpora

    try:
        found = registry.detect(folder)
    except FileNotFoundError as err:
        _fail(str(err))
    if not found:
        _fail(f"no known corpus layout under {folder}")
    entries = {}
    for fmt, root in found:
        name = fmt if fmt not in entries else f"{fmt}-{root.name}"
        entries[name] = {"format": fmt, "root": os.path.relpath(root)}
    set_corpora(params, entries)
    _params(params)
    for name, e in entries.items():
        console.print(f"corpus {name}: {e['format']} at {e['root']}")


from ser import cli_ops, cli_predict  # noqa: E402  (prediction and operations commands live in their own modules)

cli_predict.register(app)
cli_ops.register(app)

if __name__ == "__main__":
    app()
