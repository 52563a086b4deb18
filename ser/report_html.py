"""The run report: ONE self-contained HTML file (reports/index.html) a person reads top to bottom.

`write_run_report(repo_root, out)` gathers what the pipeline wrote -- the manifest and its
quarantine, the split, the validation report, the leaderboard, per-model scores, confusion
matrices, speaker-grouped cross-validation with speaker-bootstrap intervals, training curves, the
cross-corpus matrix, the chosen model and params.yaml -- into one
page: images are inlined as base64 PNG, styles are inline, there is no script and no link out, so
it opens from disk with no network. A missing input is said in its section ("not run"), never an
error. `python -m ser.report_html [--root .] [--out reports/index.html]`.
"""
from __future__ import annotations

import argparse
import base64
import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ser import EMOTIONS

# every input, relative to the repository root (the DVC stage lists the same paths as deps)
MANIFEST = "data/interim/manifest.parquet"
MANIFEST_QUARANTINE = "data/interim/manifest.quarantine.parquet"
FEATURE_QUARANTINE = "data/features/quarantine"
VALIDATION = "reports/validation.md"
LEADERBOARD = "reports/leaderboard.md"
MODEL_METRICS = "metrics/models"
MODEL_REPORTS = "reports/models"
MODEL_PLOTS = "plots/models"
LOSO = "metrics/loso"
CROSS_CORPUS_MD = "reports/cross_corpus.md"
CROSS_CORPUS_PNG = "plots/cross_corpus.png"
CROSS_CORPUS_JSON = "metrics/cross_corpus.json"
CV_METRICS = "metrics/cv"
CV_PLOTS = "plots/cv"
BEST = "metrics/best.json"
PARAMS = "params.yaml"
SPLITS_PNG = "plots/splits.png"
LEADERBOARD_PNG = "plots/leaderboard.png"
PER_CORPUS_PNG = "plots/per_corpus.png"

CSS = """
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:1rem 2rem 3rem}
h1{font-size:1.6rem;margin:.6rem 0}h2{font-size:1.25rem;margin:2rem 0 .5rem;border-bottom:1px solid #d9dde5}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
section{background:#fff;border:1px solid #d9dde5;border-radius:8px;padding:.2rem 1.2rem 1rem;margin:1rem 0}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}th,td{border:1px solid #d9dde5;padding:.2rem .5rem}
th{background:#f0f2f6;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #eef0f4}.figs{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0;flex:1 1 300px;max-width:520px}figcaption{color:#5b6475;font-size:.85rem}
pre{background:#f6f7f9;border:1px solid #d9dde5;padding:.6rem;overflow:auto;font-size:.8rem}
.muted{color:#5b6475}.missing{color:#8a5a00;background:#fff7e0;border:1px solid #f0d58a;padding:.4rem .6rem;border-radius:5px}
nav a{margin-right:.8rem}
"""


# -- small builders (everything that goes into the page is escaped here) -----------------------------


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """A cell: floats to 4 decimals, missing as an empty cell."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def table(frame: pd.DataFrame, index: bool = False) -> str:
    """An HTML table of a DataFrame; numbers right-aligned."""
    if index:
        frame = frame.reset_index()
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = "".join(f'<td class="n">{esc(fmt(v))}</td>' if isinstance(v, (int, float)) and not isinstance(v, bool)
                        else f"<td>{esc(fmt(v))}</td>" for v in row)
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def image(path: Path, caption: str) -> str:
    """A PNG inlined as a data URL, with its caption; a note when the file is absent."""
    if not path.is_file():
        return missing(f"{caption}: no image ({path.name} not written)")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def markdown(text: str) -> str:
    """Markdown (the pipeline's own .md reports) to HTML; raw HTML in the source is escaped, not passed."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def missing(text: str) -> str:
    return f'<p class="missing">{esc(text)}</p>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def read_quarantine(root: Path) -> pd.DataFrame:
    """Every quarantined file with its stage and reason: the manifest's and each corpus's feature quarantine."""
    frames = []
    path = root / MANIFEST_QUARANTINE
    if path.is_file():
        frames.append(pd.read_parquet(path).assign(stage="ingest / manifest"))
    for part in sorted((root / FEATURE_QUARANTINE).glob("*.parquet")):
        frames.append(pd.read_parquet(part).assign(stage="features"))
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["stage", "corpus", "kind", "reason", "path"])
    df = pd.concat(frames, ignore_index=True)
    for col in ("corpus", "kind", "reason", "path"):
        if col not in df:
            df[col] = ""
    return df[["stage", "corpus", "kind", "reason", "path"]]


def configured(root: Path, folder: str, section: str, key: str | None = None) -> list[Path]:
    """The metrics files in `folder` whose names params.yaml still lists under `section` (`key`): a model
    removed from params.yaml leaves its last metrics file on disk, and it is no longer this run's."""
    import yaml

    from ser.summary import configured_names

    paths = sorted((root / folder).glob("*.json"))
    try:
        names = set(configured_names(root, section, key))
    except (OSError, yaml.YAMLError):
        return paths
    return [p for p in paths if p.stem in names] if names else paths


def model_names(root: Path) -> list[str]:
    """Models with metrics, in leaderboard order (validation UAR, best first) when the board is known."""
    names = [p.stem for p in configured(root, MODEL_METRICS, "models")]

    def val_uar(name: str) -> float:
        m = read_json(root / MODEL_METRICS / f"{name}.json") or {}
        value = (m.get("val") or {}).get("uar")
        return -1.0 if value is None else float(value)

    best = (read_json(root / BEST) or {}).get("model")
    return sorted(names, key=lambda n: (n != best, -val_uar(n), n))


# -- sections -----------------------------------------------------------------------------------------


def data_section(root: Path) -> str:
    path = root / MANIFEST
    parts = []
    if path.is_file():
        m = pd.read_parquet(path, columns=["corpus", "speaker", "gender", "emotion", "split", "duration_s"])
        per_corpus = m.groupby("corpus").agg(clips=("speaker", "size"), speakers=("speaker", "nunique"),
                                              hours=("duration_s", lambda s: round(float(s.sum()) / 3600, 3)))
        parts += [f"<p>{len(m)} clips from {m['speaker'].nunique()} speakers in {m['corpus'].nunique()} "
                  "corpora, after quarantine.</p>", "<h3>Clips per corpus</h3>", table(per_corpus, index=True),
                  "<h3>Clips per corpus and emotion</h3>",
                  table(pd.crosstab(m["corpus"], m["emotion"]).reindex(columns=list(EMOTIONS), fill_value=0),
                        index=True),
                  "<h3>Speakers per corpus and gender</h3>",
                  table(m.groupby(["corpus", "gender"])["speaker"].nunique().unstack(fill_value=0), index=True),
                  "<h3>The split (speakers never cross splits)</h3>",
                  table(m.groupby(["split", "corpus"]).agg(clips=("speaker", "size"),
                                                           speakers=("speaker", "nunique")), index=True)]
    else:
        parts.append(missing(f"not run: {MANIFEST} is absent (run `dvc repro manifest`)"))
    parts.append(image(root / SPLITS_PNG, "clips per emotion in each split, per corpus"))
    q = read_quarantine(root)
    parts.append("<h3>Quarantine</h3>")
    if len(q):
        reasons = q.groupby(["stage", "corpus", "kind", "reason"]).size().rename("files").reset_index()
        parts += [f"<p>{len(q)} file(s) left out, with the reason for each:</p>", table(reasons)]
    else:
        parts.append("<p>No file was quarantined.</p>")
    return section("data", "1. Data", "".join(parts))


def validation_section(root: Path) -> str:
    path = root / VALIDATION
    if not path.is_file():
        return section("validation", "2. Validation", missing(f"not run: {VALIDATION} is absent"))
    text = path.read_text(encoding="utf-8")
    verdict = next((line for line in text.splitlines() if line.strip() and not line.startswith("#")), "")
    body = (f"<p><b>{esc(verdict)}</b> (Great Expectations suites on the manifest and the feature table)</p>"
            f"<details><summary>every expectation and the class balance</summary>{markdown(text)}</details>")
    return section("validation", "2. Validation", body)


def _ci_columns(metrics: dict[str, Any]) -> dict[str, str]:
    """Confidence intervals in a model's metrics, as `split metric` -> "[lo, hi]" (any key ending in `_ci`)."""
    out = {}
    for split in ("val", "test"):
        for key, value in (metrics.get(split) or {}).items():
            if key.endswith("_ci") and isinstance(value, (list, tuple)) and len(value) == 2:
                out[f"{split}_{key}"] = f"[{float(value[0]):.3f}, {float(value[1]):.3f}]"
    return out


def ci(entry: dict[str, Any] | None, key: str = "ci") -> str:
    """A 95% interval as "[lo, hi]" (4 decimals), empty when undefined."""
    low, high = (entry or {}).get(key) or (None, None)
    return "" if low is None or high is None else f"[{float(low):.4f}, {float(high):.4f}]"


def _val_score(best: dict[str, Any]) -> str:
    """The chosen model's validation score with its interval and the speakers behind it (escaped)."""
    return esc(f"{best.get('model')}: mean of per-corpus validation UARs {fmt(best.get('val_uar'))}, 95% CI "
               f"{ci({'ci': [best.get('val_uar_ci_low'), best.get('val_uar_ci_high')]})} over "
               f"{best.get('val_speakers')} validation speakers (resampled).")


def _overlap(best: dict[str, Any]) -> str:
    if best.get("top_two_ci_overlap"):
        return esc(f" Its interval overlaps the runner-up's ({best.get('runner_up')}): not distinguishable on "
                   "these speakers.")
    if best.get("top_two_ci_overlap") is False:
        return esc(f" Its interval lies above the runner-up's ({best.get('runner_up')}).")
    return ""


def leaderboard_section(root: Path, names: list[str]) -> str:
    parts = []
    path = root / LEADERBOARD
    if path.is_file():
        parts.append(markdown(path.read_text(encoding="utf-8")))
    else:
        parts.append(missing(f"not run: {LEADERBOARD} is absent (run `dvc repro select_best`)"))
    best = read_json(root / BEST) or {}
    if best.get("val_uar_ci_low") is not None:
        parts.append(f"<p>{_val_score(best)}{_overlap(best)}</p>")
    cis = {n: _ci_columns(read_json(root / MODEL_METRICS / f"{n}.json") or {}) for n in names}
    if any(cis.values()):
        frame = pd.DataFrame([{"model": n, **c} for n, c in cis.items() if c])
        parts += ["<h3>95% confidence intervals (bootstrap over clips)</h3>", table(frame)]
    else:
        parts.append('<p class="muted">No confidence intervals in metrics/models/*.json for this run.</p>')
    parts.append('<div class="figs">' + image(root / LEADERBOARD_PNG, "leaderboard") + "</div>")
    return section("leaderboard", "3. Leaderboard", "".join(parts))


def _gender_scores(predictions: pd.DataFrame, genders: pd.Series) -> dict[str, Any]:
    """UAR per gender ("<gender> UAR (clips)" -> value) from one model's test predictions (utt_id, actual,
    predicted); predictions without a manifest row are left out (counted under "unmatched")."""
    df = predictions.assign(gender=predictions["utt_id"].map(genders))
    out: dict[str, Any] = {}
    for gender, part in df.dropna(subset=["gender"]).groupby("gender"):
        recalls = [float((part.loc[part["actual"] == e, "predicted"] == e).mean())
                   for e in EMOTIONS if (part["actual"] == e).any()]
        out[f"{gender} UAR ({len(part)} clips)"] = sum(recalls) / len(recalls)
    out["unmatched"] = int(df["gender"].isna().sum())
    return out


def scores_section(root: Path, names: list[str]) -> str:
    corpus_rows, gender_rows = [], []
    genders = None
    if (root / MANIFEST).is_file():
        m = pd.read_parquet(root / MANIFEST, columns=["utt_id", "gender"])
        genders = m.set_index("utt_id")["gender"]
    for name in names:
        rep = read_json(root / MODEL_REPORTS / f"{name}.json") or {}
        row: dict[str, Any] = {"model": name}
        for split in ("test", "val"):
            for corpus, s in ((rep.get("scores") or {}).get(split, {}).get("by_corpus") or {}).items():
                row[f"{corpus} {split} UAR ({s.get('n')} clips)"] = s.get("uar")
        if len(row) > 1:
            corpus_rows.append(row)
        preds = root / MODEL_PLOTS / name / "predictions.csv"
        if genders is not None and preds.is_file():
            gender_rows.append({"model": name, **_gender_scores(pd.read_csv(preds), genders)})
    parts = ["<h3>UAR per corpus</h3>"]
    parts.append(table(pd.DataFrame(corpus_rows)) if corpus_rows else missing("no per-corpus scores in reports/models"))
    parts.append('<div class="figs">' + image(root / PER_CORPUS_PNG, "UAR per corpus") + "</div>")
    parts.append("<h3>UAR per gender (test speakers)</h3>")
    if gender_rows:
        frame = pd.DataFrame(gender_rows)
        unmatched = int(frame.pop("unmatched").max())
        parts.append(table(frame))
        if unmatched:
            parts.append(f'<p class="muted">{unmatched} test prediction(s) have no row in the manifest '
                         "(outputs of an older run?): left out.</p>")
    else:
        parts.append(missing("not available: needs the manifest (genders) and plots/models/*/predictions.csv"))
    loso = []
    for path in configured(root, LOSO, "train", "loso"):
        d = read_json(path) or {}
        if d.get("skipped"):
            loso.append({"model": path.stem, "folds": None, "clips": None, "uar_mean": None, "uar_std": None,
                         "uar_pooled": None, "macro_f1_mean": None, "note": d.get("reason")})
            continue
        loso.append({"model": path.stem, "folds": d.get("folds"), "clips": d.get("n"), "uar_mean": d.get("uar_mean"),
                     "uar_std": d.get("uar_std"), "uar_pooled": d.get("uar_pooled"),
                     "macro_f1_mean": d.get("macro_f1_mean"), "note": ""})
    parts.append("<h3>Leave-one-speaker-out</h3>")
    parts.append(table(pd.DataFrame(loso)) if loso else missing("not run: no metrics/loso/*.json"))
    return section("scores", "4. Scores per corpus and per gender", "".join(parts))


def cv_table(report: dict[str, Any]) -> pd.DataFrame:
    """One row per score of a metrics/cv/NAME.json: each corpus, the mean of corpora, pooled, each gender, the gap."""
    rows = [{"score": f"UAR {c}", "value": v.get("uar"), "95% CI": ci(v), "speakers": v.get("speakers"),
             "clips": v.get("n")} for c, v in (report.get("uar_by_corpus") or {}).items()]
    mean, pooled = report.get("uar_corpus_mean") or {}, report.get("uar_pooled") or {}
    rows.append({"score": "mean of per-corpus UARs", "value": mean.get("uar"), "95% CI": ci(mean),
                 "speakers": report.get("n_speakers"), "clips": report.get("n")})
    rows.append({"score": "UAR pooled over clips", "value": pooled.get("uar"), "95% CI": ci(pooled),
                 "speakers": report.get("n_speakers"), "clips": report.get("n")})
    rows += [{"score": f"UAR {g}", "value": v.get("uar"), "95% CI": ci(v), "speakers": v.get("speakers"),
              "clips": v.get("n")} for g, v in (report.get("by_gender") or {}).items()]
    gap = report.get("gender_gap") or {}
    rows.append({"score": "female − male gap (within " + (", ".join(gap.get("corpora") or []) or "no mixed corpus")
                 + ")", "value": gap.get("female_minus_male"), "95% CI": ci(gap), "speakers": None, "clips": None})
    return pd.DataFrame(rows, dtype=object)  # counts stay integers, an absent one an empty cell


def cv_section(root: Path) -> str:
    paths = configured(root, CV_METRICS, "cv", "models")
    if not paths:
        return section("cv", "5. Cross-validation on every speaker", missing(
            f"not run: no {CV_METRICS}/*.json (list models under cv.models in params.yaml)"))
    parts = ['<p class="muted">Speaker-grouped k-fold: every speaker is tested once, by a model that never heard '
             "them. Intervals are 95% bootstrap intervals resampling speakers within each corpus.</p>"]
    for path in paths:
        rep = read_json(path) or {}
        boot = rep.get("bootstrap") or {}
        parts += [f"<h3>{esc(rep.get('model', path.stem))} ({esc(rep.get('kind', ''))}): {esc(rep.get('protocol', ''))}"
                  "</h3>",
                  f"<p>{esc(rep.get('n'))} clips from {esc(rep.get('n_speakers'))} speakers; "
                  f"{esc(boot.get('draws'))} bootstrap draws, seed {esc(boot.get('seed'))}.</p>",
                  table(cv_table(rep)),
                  '<div class="figs">' + image(root / CV_PLOTS / f"{path.stem}.png",
                                               f"{path.stem}: UAR per corpus and gender, 95% speaker CI") + "</div>"]
    return section("cv", "5. Cross-validation on every speaker", "".join(parts))


def confusion_section(root: Path, names: list[str]) -> str:
    figs = [image(root / MODEL_PLOTS / n / "confusion.png", f"{n}: confusion on test speakers") for n in names
            if (root / MODEL_PLOTS / n / "confusion.png").is_file()]
    body = f'<div class="figs">{"".join(figs)}</div>' if figs else missing("no confusion matrices in plots/models")
    return section("confusion", "6. Confusion matrices", body)


def cross_corpus_section(root: Path) -> str:
    md, png, js = root / CROSS_CORPUS_MD, root / CROSS_CORPUS_PNG, root / CROSS_CORPUS_JSON
    title = "7. Cross-corpus"
    if not md.is_file() and not png.is_file() and not js.is_file():
        return section("cross-corpus", title, missing(
            f"not run: no {CROSS_CORPUS_MD} or {CROSS_CORPUS_PNG} (train on one corpus, test on another)"))
    parts = [markdown(md.read_text(encoding="utf-8")) if md.is_file() else missing(f"{CROSS_CORPUS_MD}: not written")]
    summary = read_json(js)
    if summary is not None:
        rows = [{"train": pair.partition("->")[0], "test": pair.partition("->")[2], "UAR": v}
                for pair, v in (summary.get("uar") or {}).items()]
        rows += [{"train": "every other corpus", "test": c, "UAR": v} for c, v in (summary.get("loco_uar") or {}).items()]
        parts.append(f"<h3>{esc(CROSS_CORPUS_JSON)} (model {esc(summary.get('model'))})</h3>")
        parts.append(table(pd.DataFrame(rows)) if rows else
                     '<p class="muted">No cross-corpus pair was scored (one corpus, or none sharing two emotions).</p>')
    if png.is_file():
        parts.append('<div class="figs">' + image(png, "UAR when training on one corpus and testing on another") + "</div>")
    return section("cross-corpus", title, "".join(parts))


def stop_rows(root: Path, names: list[str]) -> list[dict[str, Any]]:
    """Per model trained by epochs (a `stop_reason` in its metrics): epochs run and why it stopped."""
    from ser.summary import STOP_REASONS

    rows = []
    for n in names:
        m = read_json(root / MODEL_METRICS / f"{n}.json") or {}
        if m.get("stop_reason"):
            rows.append({"model": n, "epochs run": m.get("epochs_run"), "stop_reason": m["stop_reason"],
                         "why": STOP_REASONS.get(m["stop_reason"], m["stop_reason"])})
    return rows


def curves_section(root: Path, names: list[str]) -> str:
    figs, flat = [], []
    for n in names:
        rep = read_json(root / MODEL_REPORTS / f"{n}.json") or {}
        if rep.get("history"):
            figs.append(image(root / MODEL_PLOTS / n / "history.png", f"{n}: loss and accuracy per epoch"))
        else:
            flat.append(n)
    parts = [f'<div class="figs">{"".join(figs)}</div>' if figs else "<p>No model was trained by epochs.</p>"]
    if flat:
        parts.append(f'<p class="muted">Trained to convergence, no per-epoch curve: {esc(", ".join(flat))}.</p>')
    stops = stop_rows(root, names)
    if stops:
        parts += ["<h3>Why training stopped</h3>", table(pd.DataFrame(stops))]
        capped = [r["model"] for r in stops if r["stop_reason"] == "epoch_cap_still_falling"]
        if capped:
            parts.append(f"<p>Stopped at the epoch cap with validation loss still falling: {esc(', '.join(capped))}. "
                         "More epochs (train.keras.epochs) may help; early stopping then decides.</p>")
    return section("curves", "8. Training curves", "".join(parts))


def best_section(root: Path, names: list[str]) -> str:
    best = read_json(root / BEST)
    if best is None:
        return section("best", "9. The chosen model", missing(f"not run: {BEST} is absent"))
    name = best.get("model", "?")
    runner_up = next((n for n in names if n != name), None)
    why = (f"<p><b>{esc(name)}</b> ({esc(best.get('kind', ''))}) has the highest validation UAR "
           f"({fmt(best.get('val_uar'))}) of the {len(names)} models: the choice is made on validation speakers "
           "only, and the test speakers' scores never decide it.")
    if runner_up:
        ru = (read_json(root / MODEL_METRICS / f"{runner_up}.json") or {}).get("val") or {}
        why += f" Next: {esc(runner_up)} at {fmt(ru.get('uar'))}."
    why += "</p>"
    if best.get("val_uar_ci_low") is not None:
        why += f"<p>{_val_score(best)}{_overlap(best)}</p>"
    frame = pd.DataFrame([{"metric": k, "value": v} for k, v in best.items()])
    return section("best", "9. The chosen model", why + table(frame))


def params_section(root: Path) -> str:
    path = root / PARAMS
    body = (f"<pre>{esc(path.read_text(encoding='utf-8'))}</pre>" if path.is_file()
            else missing(f"{PARAMS} is absent"))
    return section("params", "10. The params that produced it", body)


SECTIONS = [("data", "Data"), ("validation", "Validation"), ("leaderboard", "Leaderboard"),
            ("scores", "Per corpus / gender"), ("cv", "Cross-validation"), ("confusion", "Confusion"), ("cross-corpus", "Cross-corpus"),
            ("curves", "Training curves"), ("best", "Chosen model"), ("params", "Params")]


def render_run_report(root: Path | str) -> str:
    """The report's HTML for the pipeline outputs under `root`."""
    root = Path(root)
    names = model_names(root)
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in SECTIONS)
    body = [data_section(root), validation_section(root), leaderboard_section(root, names),
            scores_section(root, names), cv_section(root), confusion_section(root, names), cross_corpus_section(root),
            curves_section(root, names), best_section(root, names), params_section(root)]
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>ser: run report</title><style>{CSS}</style></head><body><main>"
            "<h1>Speech emotion recognition: run report</h1>"
            "<p class=\"muted\">Every score is measured on speakers the model never heard in training. "
            f"{len(names)} models.</p><nav>{nav}</nav>{''.join(body)}</main></body></html>")


def write_run_report(repo_root: Path | str = ".", out: Path | str | None = None) -> Path:
    """Write the self-contained report (default `<repo_root>/reports/index.html`) atomically; its path."""
    from ser.io import atomic_path

    root = Path(repo_root)
    out = Path(out) if out is not None else root / "reports" / "index.html"
    text = render_run_report(root)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return out


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ser.report_html", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository root (default: .)")
    parser.add_argument("--out", type=Path, default=None, help="default: ROOT/reports/index.html")
    args = parser.parse_args(list(argv) if argv is not None else None)
    print(f"wrote {write_run_report(args.root, args.out)}")


if __name__ == "__main__":
    main()
