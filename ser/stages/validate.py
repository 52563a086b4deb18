"""Stage validate: Great Expectations suites on the manifest and the pooled feature table."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ser.console import DEFAULT_PARAMS, ParamsOpt, StageError, console, run
from ser.params import Params

META_COLUMNS = ("utt_id", "corpus", "speaker", "gender", "emotion", "split", "fold", "augmented", "copy", "source")


def main(params: Params, manifest: Path = Path("data/interim/manifest.parquet"),
         features: Path = Path("data/features/pooled"), report: Path = Path("reports/validation.md")) -> list:
    """Write the Markdown report (kept whether or not the suites pass); StageError when one fails."""
    import pandas as pd

    from ser.feature_table import read_features
    from ser.features import feature_config, pooled_feature_names
    from ser.validate import validate_features, validate_manifest, write_report

    cfg = params.validate_.model_dump()
    names = pooled_feature_names(feature_config(params))
    manifest_df = pd.read_parquet(manifest)
    # only the configured corpora's partitions: a corpus dropped from params.yaml leaves its part files behind
    features_df = read_features(features, corpora=sorted(manifest_df["corpus"].astype(str).unique()))
    extra = [c for c in features_df.columns if c not in names and c not in META_COLUMNS]
    reports = [validate_manifest(manifest_df, cfg), validate_features(features_df.drop(columns=extra), names, cfg,
                                                                        manifest_ids=manifest_df["utt_id"])]
    write_report(reports, report)
    for r in reports:
        console.print(f"{r.table}: {'[green]passed' if r.success else '[red]FAILED'}[/] ({len(r.results)} expectations)")
    failed = [r for r in reports if not r.success]
    if failed:
        for r in failed:
            console.print(r.failure_message())
        raise StageError(f"validation failed; the full report is {report}")
    return reports


def command(
    manifest: Annotated[Path, typer.Option("--manifest")] = Path("data/interim/manifest.parquet"),
    features: Annotated[Path, typer.Option("--features", help="pooled feature table (hive-partitioned folder)")] = Path("data/features/pooled"),
    report: Annotated[Path, typer.Option(help="human-readable Markdown report, kept whether or not the suites pass")] = Path("reports/validation.md"),
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Run the Great Expectations suites on the manifest and the feature table; fail with a readable report."""
    run(main, params, manifest, features, report)


if __name__ == "__main__":
    typer.run(command)
