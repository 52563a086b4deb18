"""Data contracts for the manifest and the features table, checked with Great Expectations.

Every check runs as a GX expectation (one suite per table), including the ones GX has no
built-in for: those get a derived helper column on a copy of the table (e.g. `speaker_splits`,
the number of distinct splits a speaker appears in) and an ordinary expectation on it, so the
offending rows are reported by GX like any other failure.

    report = validate_manifest(manifest, params["validate"])
    write_report([report], "reports/validate.md")
    report.raise_for_failure()          # ValidationFailed names the failed checks and rows

The class balance per corpus/split is a WARNING: it is reported, never failing.

params.yaml (all keys optional; these are the defaults):

    validate:
      duration_s: {min: 0.1, max: 60}
      sample_rate: {min: 8000, max: 96000}
      min_rows_per_class: 1       # per class, in train and in test (0: no class-presence check)
      require_all_classes: true   # all seven in train and test; false: every class the table has
      imbalance_warn_ratio: 3.0   # warn when a corpus/split's largest class is this many times its smallest

great_expectations is imported lazily (it costs seconds): importing this module is cheap.
pandas 3 note: GX 1.x's `expect_column_values_to_be_in_type_list` does not recognise the new
default string dtype (`str`, a StringDtype with NaN as missing value) under any type name, so
string (and categorical) columns are converted to `object` on the validated copy; GX then checks
every value's Python type, which is stricter than a dtype check.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from ser import EMOTIONS
from ser.params import ValidateParams

SPLITS: tuple[str, ...] = ("train", "val", "test")
GENDERS: tuple[str, ...] = ("male", "female", "unknown")

MANIFEST_SCHEMA: dict[str, str] = {  # column -> kind (see _TYPES)
    "utt_id": "str", "path": "str", "corpus": "str", "speaker": "str", "gender": "str",
    "language": "str", "raw_label": "str", "emotion": "str", "duration_s": "float",
    "sample_rate": "int", "channels": "int", "sha1": "str", "split": "str", "fold": "int",
}
MANIFEST_NOT_NULL: tuple[str, ...] = (
    "utt_id", "path", "corpus", "speaker", "gender", "emotion", "duration_s", "sample_rate",
    "channels", "sha1", "split", "fold",
)
FEATURE_ID_COLUMNS: tuple[str, ...] = ("utt_id", "corpus", "speaker", "emotion", "split")  # typed like the manifest
FEATURES_META_COLUMNS: dict[str, str] = {
    **{c: MANIFEST_SCHEMA[c] for c in FEATURE_ID_COLUMNS}, "augmented": "bool", "copy": "int", "source": "str",
}

# GX type names per kind; pandas dtypes are matched by `expect_column_values_to_be_in_type_list`.
_TYPES: dict[str, list[str]] = {
    "str": ["str"],  # object columns: GX checks each value's Python type
    "float": ["float64", "float32", "Float64Dtype", "Float32Dtype"],
    "int": ["int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8",
            "Int64Dtype", "Int32Dtype", "Int16Dtype", "Int8Dtype"],
    "bool": ["bool", "BooleanDtype"],
}

FEATURE_BOUND = 1e12  # |feature| above this (inf included) is a broken extractor, not a value
EXAMPLES = 5          # offending rows shown per failed expectation
MAX_DETAILED = 50     # failures detailed in the Markdown report (all are in the summary table)
ROW = "_row"          # helper column: the row's position in the caller's frame

DEFAULTS: dict[str, Any] = ValidateParams().model_dump()  # params.yaml `validate:`, defaults in ser.params


class ValidationFailed(Exception):
    """A table broke its contract; str() names the failed expectations and a few offending rows."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(report.failure_message())


# ---------------------------------------------------------------------------------------- config


def _settings(cfg: Any) -> dict[str, Any]:
    """The `validate:` block with defaults filled in; accepts that block, all params, or None."""
    if cfg is None:
        cfg = {}
    elif hasattr(cfg, "model_dump"):  # a pydantic Params (its `validate` attribute is a method)
        cfg = cfg.model_dump()
    if not isinstance(cfg, Mapping):
        raise TypeError(f"validate config must be a mapping, not {type(cfg).__name__}")
    if "validate" in cfg or "corpora" in cfg:  # the whole params, with or without a validate block
        cfg = cfg.get("validate") or {}
        if not isinstance(cfg, Mapping):
            raise ValueError(f"validate: must be a mapping, got {cfg!r}")
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"validate: unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    out: dict[str, Any] = {}
    for key in ("duration_s", "sample_rate"):
        rng = {**DEFAULTS[key], **(cfg.get(key) or {})}
        if set(rng) != {"min", "max"}:
            raise ValueError(f"validate.{key} takes min and max, got {sorted(rng)}")
        lo, hi = rng["min"], rng["max"]
        if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo < hi):
            raise ValueError(f"validate.{key}: need numbers with min < max, got min={lo!r} max={hi!r}")
        out[key] = {"min": lo, "max": hi}
    mrc = cfg.get("min_rows_per_class", DEFAULTS["min_rows_per_class"])
    if isinstance(mrc, bool) or not isinstance(mrc, int) or mrc < 0:
        raise ValueError(f"validate.min_rows_per_class must be an integer >= 0, got {mrc!r}")
    out["min_rows_per_class"] = mrc
    rac = cfg.get("require_all_classes", DEFAULTS["require_all_classes"])
    if not isinstance(rac, bool):
        raise ValueError(f"validate.require_all_classes must be true or false, got {rac!r}")
    out["require_all_classes"] = rac
    ratio = cfg.get("imbalance_warn_ratio", DEFAULTS["imbalance_warn_ratio"])
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio < 1:
        raise ValueError(f"validate.imbalance_warn_ratio must be a number >= 1, got {ratio!r}")
    out["imbalance_warn_ratio"] = float(ratio)
    return out


# ---------------------------------------------------------------------------------------- report


@dataclass
class ExpectationResult:
    """One expectation's outcome, with up to EXAMPLES offending rows (dicts, utt_id first)."""

    name: str                    # the GX expectation type, e.g. expect_column_values_to_be_in_set
    column: str | None           # its column(s); None for table-level expectations
    success: bool
    check: str = ""              # what it means for this table, in words
    unexpected_count: int | None = None
    element_count: int | None = None
    observed: str | None = None  # a short text for non-row results (missing classes, columns, ...)
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None     # GX raised while computing it
    group: str | None = None     # expectations repeated over many columns share a group

    def outcome(self) -> str:
        if self.error:
            return f"error: {self.error}"
        if self.unexpected_count is not None:
            if self.success:
                return "ok"
            of = f" of {self.element_count}" if self.element_count is not None else ""
            return f"{self.unexpected_count}{of} rows unexpected"
        if self.observed:
            return self.observed
        return "ok" if self.success else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "column": self.column, "success": self.success, "check": self.check,
            "unexpected_count": self.unexpected_count, "element_count": self.element_count,
            "observed": self.observed, "rows": [{k: _plain(v) for k, v in r.items()} for r in self.rows],
            "error": self.error,
        }


@dataclass
class ValidationReport:
    success: bool
    table: str
    results: list[ExpectationResult]
    balance: pd.DataFrame = field(default_factory=pd.DataFrame)  # counts per (corpus, split) x emotion
    warnings: list[str] = field(default_factory=list)             # never failing
    n_rows: int = 0

    @property
    def failures(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success]

    def raise_for_failure(self) -> ValidationReport:
        if not self.success:
            raise ValidationFailed(self)
        return self

    def failure_message(self, limit: int = 10) -> str:
        failed = self.failures
        if not failed:
            return f"{self.table}: all {len(self.results)} expectations passed"
        lines = [f"{self.table} validation failed: {len(failed)} of {len(self.results)} expectations failed "
                 f"({self.n_rows} rows)"]
        for r in failed[:limit]:
            col = f"({r.column})" if r.column else ""
            lines.append(f"  - {r.name}{col} [{r.check}]: {r.outcome()}")
            for row in r.rows[:3]:
                lines.append("      " + ", ".join(f"{k}={_short(v)}" for k, v in row.items()))
        if len(failed) > limit:
            lines.append(f"  ... and {len(failed) - limit} more (see the validation report)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table, "success": self.success, "n_rows": self.n_rows,
            "expectations": len(self.results), "failed": len(self.failures),
            "results": [r.to_dict() for r in self.results], "warnings": list(self.warnings),
        }

    def to_markdown(self) -> str:
        failed = self.failures
        verdict = "✓ PASSED" if self.success else "✗ FAILED"
        out = [f"## {self.table}: {verdict}", ""]
        out.append(f"{len(self.results) - len(failed)} of {len(self.results)} expectations passed, "
                   f"{len(failed)} failed; {self.n_rows} rows.")
        out += ["", "| | expectation | column | check | result |", "|---|---|---|---|---|"]
        for status, name, column, check, result in _summary_rows(self.results):
            out.append(f"| {status} | {_md(name)} | {_md(column)} | {_md(check)} | {_md(result)} |")
        if failed:
            out += ["", "### Failures"]
            for r in failed[:MAX_DETAILED]:
                col = f" — `{r.column}`" if r.column else ""
                out += ["", f"#### ✗ {r.name}{col}", "", f"{r.check}: {r.outcome()}"]
                if r.rows:
                    cols = list(dict.fromkeys(k for row in r.rows for k in row))
                    shown = f"first {len(r.rows)}" if (r.unexpected_count or 0) > len(r.rows) else "all"
                    out += ["", f"Offending rows ({shown}):", "", "| " + " | ".join(_md(c) for c in cols) + " |",
                            "|" + "---|" * len(cols)]
                    for row in r.rows:
                        out.append("| " + " | ".join(_md(_short(row.get(c, ""))) for c in cols) + " |")
            if len(failed) > MAX_DETAILED:
                out += ["", f"... and {len(failed) - MAX_DETAILED} more failures (see the table above)."]
        out += ["", "### Class balance (WARNING only, never failing)", ""]
        if self.balance is None or self.balance.empty:
            out.append("(no rows with corpus, split and emotion)")
        else:
            out += _frame_markdown(self.balance)
        if self.warnings:
            out.append("")
            out += [f"- ⚠ {w}" for w in self.warnings]
        return "\n".join(out) + "\n"


def _summary_rows(results: Sequence[ExpectationResult]) -> Iterable[tuple[str, str, str, str, str]]:
    """Summary table rows; expectations repeated over a group of columns collapse into one row."""
    seen: dict[tuple[str, str], list[ExpectationResult]] = {}
    order: list[Any] = []
    for r in results:
        if r.group:
            key = (r.name, r.group)
            if key not in seen:
                seen[key] = []
                order.append(key)
            seen[key].append(r)
        else:
            order.append(r)
    for item in order:
        if isinstance(item, ExpectationResult):
            yield ("✓" if item.success else "✗", item.name, item.column or "(table)", item.check, item.outcome())
            continue
        group = seen[item]
        bad = [r for r in group if not r.success]
        first = group[0]
        if len(group) == 1:
            yield ("✓" if first.success else "✗", first.name, first.column or "", first.check, first.outcome())
            continue
        result = "ok" if not bad else f"{len(bad)} of {len(group)} columns failed: " + ", ".join(
            str(r.column) for r in bad[:EXAMPLES]) + (" ..." if len(bad) > EXAMPLES else "")
        yield ("✓" if not bad else "✗", first.name, f"{len(group)} {item[1]}", first.check, result)


def write_report(reports: Sequence[ValidationReport] | ValidationReport, path_md: Path | str) -> Path:
    """One Markdown file for several reports, written atomically (temp file + os.replace)."""
    from ser.io import write_text

    if isinstance(reports, ValidationReport):
        reports = [reports]
    ok = all(r.success for r in reports)
    head = ["# Data validation", "",
            ("✓ all tables passed" if ok else "✗ failed: " + ", ".join(r.table for r in reports if not r.success)), ""]
    return write_text("\n".join(head) + "\n" + "\n".join(r.to_markdown() for r in reports), path_md)


# ---------------------------------------------------------------------------------------- helpers


def _plain(v: Any) -> Any:
    """numpy scalars -> Python values (JSON, Markdown)."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            return v.item()
        except (ValueError, AttributeError):
            return v
    return v


def _short(v: Any, width: int = 80) -> str:
    v = _plain(v)
    text = repr(v) if isinstance(v, float) and not math.isfinite(v) else str(v)
    return text if len(text) <= width else text[: width - 1] + "…"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _frame_markdown(df: pd.DataFrame) -> list[str]:
    idx = list(df.index.names) if any(n is not None for n in df.index.names) else []
    flat = df.reset_index() if idx else df
    cols = [str(c) for c in flat.columns]
    lines = ["| " + " | ".join(_md(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in flat.itertuples(index=False):
        lines.append("| " + " | ".join(_md(_short(v)) for v in row) + " |")
    return lines


def _gx():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def _gx_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy GX 1.x can type-check under pandas 3: string/categorical columns become object."""
    frame = df.reset_index(drop=True)  # a copy; positions == index labels
    for col in frame.columns:
        dtype = frame[col].dtype
        if dtype != object and (isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype)):
            frame[col] = frame[col].astype(object)
    frame[ROW] = range(len(frame))
    return frame


class _Suite:
    """Expectations with the report's words attached; run once through GX."""

    def __init__(self, table: str, frame: pd.DataFrame):
        self.gx = _gx()
        self.table = table
        self.frame = frame
        self.items: list[tuple[Any, str, list[str], str | None]] = []  # (expectation, check, context, group)
        self.diverse: dict[int, list[str]] = {}  # item -> columns whose distinct values the examples should cover

    @property
    def E(self):
        return self.gx.expectations

    def add(self, expectation: Any, check: str, context: Sequence[str] = (), group: str | None = None,
            diverse: Sequence[str] = ()) -> None:
        if diverse:
            self.diverse[len(self.items)] = list(diverse)
        self.items.append((expectation, check, list(context), group))

    def has(self, *cols: str) -> bool:
        return all(c in self.frame.columns for c in cols)

    def run(self) -> list[ExpectationResult]:
        gx = self.gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        batch_def = (context.data_sources.add_pandas(f"ser_{self.table}")
                     .add_dataframe_asset(self.table)
                     .add_batch_definition_whole_dataframe(f"{self.table}_whole"))
        expectations = []
        for i, (exp, _check, _ctx, _group) in enumerate(self.items):
            exp.meta = {**(exp.meta or {}), "ser_index": i}
            expectations.append(exp)
        suite = context.suites.add(gx.ExpectationSuite(name=f"ser_{self.table}", expectations=expectations))
        vd = context.validation_definitions.add(
            gx.ValidationDefinition(data=batch_def, suite=suite, name=f"ser_{self.table}_validation"))
        index_cols = [ROW] + (["utt_id"] if "utt_id" in self.frame.columns else [])
        result = vd.run(
            batch_parameters={"dataframe": self.frame},
            result_format={"result_format": "SUMMARY", "unexpected_index_column_names": index_cols,
                           "partial_unexpected_count": EXAMPLES * 4, "return_unexpected_index_query": False},
        )
        by_index: dict[int, Any] = {}
        for r in result.results:
            by_index[int((r.expectation_config.meta or {}).get("ser_index", -1))] = r
        out = []
        for i, (exp, check, ctx, group) in enumerate(self.items):
            r = by_index.get(i)
            if r is None:  # GX dropped it: never silently pass
                out.append(ExpectationResult(exp.expectation_type, _column_label(exp.configuration.kwargs),
                                             False, check, error="no result from Great Expectations", group=group))
                continue
            out.append(self._result(r, check, ctx, group, self.diverse.get(i, [])))
        return out

    def _result(self, r: Any, check: str, ctx: list[str], group: str | None, diverse: list[str]) -> ExpectationResult:
        cfg = r.expectation_config
        kwargs = dict(cfg.kwargs)
        res = dict(r.result or {})
        error = _exception_message(r.exception_info)
        out = ExpectationResult(name=cfg.type, column=_column_label(kwargs), success=bool(r.success) and not error,
                                check=check, error=error, group=group)
        if "unexpected_count" in res:
            out.unexpected_count = int(res["unexpected_count"] or 0)
            out.element_count = res.get("element_count")
            if not out.success:
                out.rows = _pick(self._rows(res, kwargs, ctx), diverse)
        else:
            out.observed = _observed_text(cfg.type, res, out.success)
        return out

    def _rows(self, res: dict[str, Any], kwargs: dict[str, Any], ctx: list[str]) -> list[dict[str, Any]]:
        """Offending rows: utt_id, the checked column(s), then context columns looked up by position."""
        value_cols = [kwargs[k] for k in ("column", "column_A", "column_B") if kwargs.get(k)] + list(
            kwargs.get("column_list") or [])
        rows = []
        for item in res.get("partial_unexpected_index_list") or []:
            if not isinstance(item, Mapping):
                continue
            pos = item.get(ROW)
            row: dict[str, Any] = {}
            if "utt_id" in item:
                row["utt_id"] = item["utt_id"]
            src = self.frame.iloc[int(pos)] if pos is not None else None
            for col in [*value_cols, *ctx]:
                if col in row or col == ROW:
                    continue
                if col in item:
                    row[col] = item[col]
                elif src is not None and col in src.index:
                    row[col] = src[col]
            if src is not None and "utt_id" not in row:
                row = {"row": int(pos), **row}
            rows.append(row)
        if not rows:  # no index list (should not happen for map expectations): fall back to values
            rows = [{"value": v} for v in (res.get("partial_unexpected_list") or [])]
        return rows


def _pick(rows: list[dict[str, Any]], diverse: Sequence[str]) -> list[dict[str, Any]]:
    """Up to EXAMPLES rows, first covering distinct values of the `diverse` columns, then in order."""
    if not diverse:
        return rows[:EXAMPLES]
    chosen, seen = [], set()
    for i, row in enumerate(rows):
        key = tuple(str(row.get(c)) for c in diverse)
        if key not in seen:
            seen.add(key)
            chosen.append(i)
    chosen = chosen[:EXAMPLES]
    chosen += [i for i in range(len(rows)) if i not in chosen][: EXAMPLES - len(chosen)]
    return [rows[i] for i in sorted(chosen)]


def _column_label(kwargs: Mapping[str, Any]) -> str | None:
    if kwargs.get("column"):
        return str(kwargs["column"])
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']}, {kwargs.get('column_B')}"
    if kwargs.get("column_list"):
        return ", ".join(map(str, kwargs["column_list"]))
    return None


def _exception_message(info: Any) -> str | None:
    """GX puts {raised_exception, exception_message} at the top or keyed by metric id."""
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    for value in info.values():
        msg = _exception_message(value)
        if msg:
            return msg
    return None


def _observed_text(name: str, res: Mapping[str, Any], success: bool) -> str | None:
    if name == "expect_column_to_exist":
        return "present" if success else "column is missing"
    if "missing_count" in res and "partial_missing_list" in res:  # distinct values contain set
        missing = sorted(map(str, res.get("partial_missing_list") or []))
        return "missing: " + ", ".join(map(str, missing)) if missing else "all present"
    details = res.get("details") or {}
    mismatched = details.get("mismatched") if isinstance(details, Mapping) else None
    if mismatched:
        parts = []
        if mismatched.get("missing"):
            parts.append("missing columns: " + ", ".join(map(str, mismatched["missing"])))
        if mismatched.get("unexpected"):
            parts.append("unexpected columns: " + ", ".join(map(str, mismatched["unexpected"])))
        return "; ".join(parts)
    if "observed_value" in res and res["observed_value"] is not None:
        obs = res["observed_value"]
        if isinstance(obs, list) and len(obs) > 12:
            return f"{len(obs)} columns"
        return f"observed {_short(obs, 120)}"
    return None


# ---------------------------------------------------------------------------------------- checks


def _add_columns(s: _Suite, spec: Mapping[str, str], not_null: Iterable[str], group: str | None = None) -> None:
    E = s.E
    for col in spec:
        s.add(E.ExpectColumnToExist(column=col), "required column exists", group=group)
    for col, kind in spec.items():
        if s.has(col):
            s.add(E.ExpectColumnValuesToBeInTypeList(column=col, type_list=_TYPES[kind]), f"type is {kind}",
                  group=group)
    for col in not_null:
        if s.has(col):
            s.add(E.ExpectColumnValuesToNotBeNull(column=col), "no missing values", group=group)


def _add_labels(s: _Suite) -> None:
    E = s.E
    if s.has("emotion"):
        s.add(E.ExpectColumnValuesToBeInSet(column="emotion", value_set=list(EMOTIONS)),
              "emotion is one of the seven", context=["corpus"])
    if s.has("split"):
        s.add(E.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)), "split is train/val/test")
        s.add(E.ExpectColumnDistinctValuesToContainSet(column="split", value_set=["train", "test"]),
              "train and test are not empty")


def _add_speaker_leak(s: _Suite) -> None:
    if not s.has("speaker", "split"):
        return
    by_speaker = s.frame.groupby("speaker", dropna=True)["split"]
    s.frame["speaker_splits"] = by_speaker.transform("nunique")
    s.frame["speaker_split_set"] = by_speaker.transform(
        lambda v: "+".join(sorted({str(x) for x in v.dropna()}))).astype(object)
    s.add(s.E.ExpectColumnValuesToBeBetween(column="speaker_splits", min_value=1, max_value=1),
          "no speaker in two splits (speaker_splits = distinct splits of the row's speaker)",
          context=["speaker", "split", "speaker_split_set"], diverse=["split"])


def _add_classes(s: _Suite, settings: Mapping[str, Any], originals: pd.Series | None = None) -> None:
    """Every class present in train and in test; at least min_rows_per_class rows each."""
    if not s.has("emotion", "split"):
        return
    from great_expectations.expectations.row_conditions import Column

    E = s.E
    minimum = settings["min_rows_per_class"]
    if settings["require_all_classes"]:
        expected = list(EMOTIONS)
        why = "all seven classes"
    else:
        present = set(s.frame["emotion"].dropna().astype(str))
        expected = [e for e in EMOTIONS if e in present] if minimum > 0 else []
        why = "every class of the table"
    for split in ("train", "test"):
        if expected:
            s.add(E.ExpectColumnDistinctValuesToContainSet(column="emotion", value_set=expected,
                                                           row_condition=Column("split") == split),
                  f"{why} present in {split}")
    if minimum > 1:
        base = s.frame if originals is None else s.frame[originals]
        counts = base.groupby(["split", "emotion"], dropna=True)[ROW].transform("size")
        s.frame["class_rows_in_split"] = counts.reindex(s.frame.index)
        what = "rows" if originals is None else "original (not augmented) rows"
        s.add(E.ExpectColumnValuesToBeBetween(
                  column="class_rows_in_split", min_value=minimum,
                  row_condition=Column("split").is_in(["train", "test"]) & Column("emotion").is_in(list(EMOTIONS))),
              f"at least {minimum} {what} per class in train and test (class_rows_in_split)",
              context=["split", "emotion"])


def _balance(df: pd.DataFrame, settings: Mapping[str, Any], augmented: pd.Series | None = None
             ) -> tuple[pd.DataFrame, list[str]]:
    """Counts per emotion for every (corpus, split); warnings for absent classes and imbalance."""
    if not {"corpus", "split", "emotion"} <= set(df.columns) or df.empty:
        return pd.DataFrame(), []
    keys = df[["corpus", "split", "emotion"]].astype(object).fillna("<missing>")
    table = pd.crosstab([keys["corpus"], keys["split"]], keys["emotion"])
    extra = sorted(str(c) for c in table.columns if c not in EMOTIONS)
    table = table.reindex(columns=[*EMOTIONS, *extra], fill_value=0).astype(int)
    table.columns.name = None
    table["total"] = table.sum(axis=1)
    if augmented is not None:
        aug = augmented.fillna(False).astype(bool)
        table["augmented"] = aug.groupby([keys["corpus"], keys["split"]]).sum().reindex(table.index,
                                                                                         fill_value=0).astype(int)
    warnings = []
    ratio = settings["imbalance_warn_ratio"]
    for (corpus, split), row in table.iterrows():
        counts = row[list(EMOTIONS)]
        absent = [e for e in EMOTIONS if counts[e] == 0]
        if absent and len(absent) < len(EMOTIONS):
            warnings.append(f"{corpus}/{split}: no rows for {', '.join(absent)}")
        nonzero = counts[counts > 0]
        if len(nonzero) > 1 and nonzero.max() > ratio * nonzero.min():
            warnings.append(f"{corpus}/{split}: class imbalance {nonzero.max() / nonzero.min():.1f}x "
                            f"({nonzero.idxmax()} {nonzero.max()} vs {nonzero.idxmin()} {nonzero.min()})")
    return table, warnings


def _prefix(value: Any, sep: str) -> Any:
    """The part of `value` before `sep`; a marker that equals no corpus when there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, str) and sep in value:
        return value.split(sep, 1)[0]
    return f"<no '{sep}' in value>"


def _report(table: str, df: pd.DataFrame, s: _Suite, balance: pd.DataFrame, warnings: list[str]) -> ValidationReport:
    results = s.run()
    return ValidationReport(success=all(r.success for r in results), table=table, results=results,
                            balance=balance, warnings=warnings, n_rows=len(df))


# ---------------------------------------------------------------------------------------- public


def validate_manifest(df: pd.DataFrame, cfg: Any = None) -> ValidationReport:
    """Check the manifest (one row per utterance) against its contract; never raises on bad data."""
    settings = _settings(cfg)
    s = _Suite("manifest", _gx_frame(df))
    E = s.E
    _add_columns(s, MANIFEST_SCHEMA, MANIFEST_NOT_NULL)
    if s.has("utt_id"):
        s.add(E.ExpectColumnValuesToBeUnique(column="utt_id"), "utt_id is unique")
    _add_labels(s)
    if s.has("gender"):
        s.add(E.ExpectColumnValuesToBeInSet(column="gender", value_set=list(GENDERS)), "gender is male/female/unknown")
    if s.has("sha1"):
        s.add(E.ExpectColumnValuesToMatchRegex(column="sha1", regex=r"^[0-9a-f]{40}$"), "sha1 is 40 hex digits")
    for col in ("duration_s", "sample_rate"):
        if s.has(col):
            lo, hi = settings[col]["min"], settings[col]["max"]
            s.add(E.ExpectColumnValuesToBeBetween(column=col, min_value=lo, max_value=hi), f"{col} in [{lo}, {hi}]")
    if s.has("channels"):
        s.add(E.ExpectColumnValuesToBeBetween(column="channels", min_value=1), "channels >= 1")
    if s.has("fold"):
        s.add(E.ExpectColumnValuesToBeBetween(column="fold", min_value=0), "fold >= 0")
    for col, sep, helper in (("utt_id", "/", "utt_id_corpus"), ("speaker", ":", "speaker_corpus")):
        if s.has(col, "corpus"):  # missing values are the not-null expectations' business
            s.frame[helper] = s.frame[col].map(lambda v, sep=sep: _prefix(v, sep)).astype(object)
            s.add(E.ExpectColumnPairValuesToBeEqual(column_A="corpus", column_B=helper,
                                                    ignore_row_if="either_value_is_missing"),
                  f"{col} is <corpus>{sep}...", context=[col])
    _add_speaker_leak(s)
    _add_classes(s, settings)
    balance, warnings = _balance(df, settings)
    return _report("manifest", df, s, balance, warnings)


def validate_features(df: pd.DataFrame, feature_columns: Sequence[str], cfg: Any = None,
                      manifest_ids: Iterable[str] | None = None) -> ValidationReport:
    """Check the features table: key columns, augmentation bookkeeping, and every feature column finite.

    With `manifest_ids`, every row must come from an utterance of the manifest (no stale or foreign rows).
    """
    settings = _settings(cfg)
    feature_columns = list(feature_columns)
    if not feature_columns:
        raise ValueError("validate_features needs the names of the feature columns")
    dup = sorted({c for c in feature_columns if feature_columns.count(c) > 1})
    if dup:
        raise ValueError(f"feature columns named twice: {dup}")
    s = _Suite("features", _gx_frame(df))  # imports GX (analytics off) before anything else of it
    E = s.E
    from great_expectations.expectations.row_conditions import Column

    _add_columns(s, FEATURES_META_COLUMNS, FEATURES_META_COLUMNS)
    fgroup = "feature columns"
    _add_columns(s, {c: "float" for c in feature_columns}, feature_columns, group=fgroup)
    for col in feature_columns:
        if s.has(col):
            s.add(E.ExpectColumnValuesToBeBetween(column=col, min_value=-FEATURE_BOUND, max_value=FEATURE_BOUND),
                  f"finite (|x| <= {FEATURE_BOUND:g}, no inf)", group=fgroup)
    # exactly the caller's feature columns: anything else must be a known non-feature column
    known = [c for c in FEATURES_META_COLUMNS] + [c for c in MANIFEST_SCHEMA if c in df.columns]
    expected = list(dict.fromkeys([*known, *feature_columns]))
    helpers = [ROW, "speaker_splits", "speaker_split_set", "class_rows_in_split"]
    _add_labels(s)
    if s.has("utt_id", "copy"):
        s.add(E.ExpectCompoundColumnsToBeUnique(column_list=["utt_id", "copy"]), "(utt_id, copy) is unique")
    if s.has("augmented", "split"):
        s.add(E.ExpectColumnValuesToBeInSet(column="split", value_set=["train"],
                                            row_condition=Column("augmented") == True),  # noqa: E712
              "no augmented row outside train", context=["source", "copy"])
    if s.has("augmented", "copy"):
        s.add(E.ExpectColumnValuesToBeInSet(column="copy", value_set=[0],
                                            row_condition=Column("augmented") == False),  # noqa: E712
              "originals have copy 0", context=["augmented"])
        s.add(E.ExpectColumnValuesToBeBetween(column="copy", min_value=1,
                                              row_condition=Column("augmented") == True),  # noqa: E712
              "augmented copies have copy >= 1", context=["augmented"])
    if s.has("augmented", "utt_id", "source"):
        s.add(E.ExpectColumnPairValuesToBeEqual(column_A="utt_id", column_B="source",
                                                row_condition=Column("augmented") == False),  # noqa: E712
              "originals are their own source", context=["augmented"])
    if manifest_ids is not None and s.has("source"):
        s.add(E.ExpectColumnValuesToBeInSet(column="source", value_set=sorted(set(map(str, manifest_ids)))),
              "every row comes from an utterance of the manifest", context=["corpus", "speaker"], diverse=["corpus"])
    _add_speaker_leak(s)
    originals = None
    if s.has("augmented") and pd.api.types.is_bool_dtype(df["augmented"].dtype):
        originals = ~df["augmented"].fillna(False).astype(bool).to_numpy()
        originals = pd.Series(originals, index=s.frame.index)
    _add_classes(s, settings, originals)
    present_helpers = [h for h in helpers if h in s.frame.columns]
    s.add(E.ExpectTableColumnsToMatchSet(column_set=expected + present_helpers, exact_match=True),
          f"columns are the key columns plus exactly the {len(feature_columns)} given feature columns")
    augmented = df["augmented"] if "augmented" in df.columns else None
    balance, warnings = _balance(df, settings, augmented)
    return _report("features", df, s, balance, warnings)


__all__ = [
    "DEFAULTS", "EMOTIONS", "ExpectationResult", "ValidationFailed", "ValidationReport",
    "validate_features", "validate_manifest", "write_report",
]
