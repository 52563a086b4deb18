"""The few lines `make run` ends with: the top of the leaderboard, scores per corpus, where to look next.

Reads only the metrics files DVC tracks (metrics/models/*.json, metrics/loso/*.json, metrics/manifest.json),
so it works after any `dvc repro` and on a checkout of another commit.

    python -m ser.summary [--top 5] [--root .]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ser import EMOTIONS

CHANCE = 1 / len(EMOTIONS)


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def configured_names(root: Path, section: str, key: str | None = None) -> list[str]:
    """The names params.yaml lists under `section` (and its `key`), in its order; [] without a params.yaml.
    A malformed params.yaml raises yaml.YAMLError."""
    import yaml

    params = root / "params.yaml"
    if not params.is_file():
        return []
    names = (yaml.safe_load(params.read_text(encoding="utf-8")) or {}).get(section) or {}
    if key:
        names = names.get(key) if isinstance(names, dict) else None
    return list(names or [])


def _zoo_order(root: Path) -> list[str]:
    """Model names in params.yaml order: ties in validation UAR keep it, as `select_best` does."""
    return configured_names(root, "models")


def model_scores(root: Path) -> list[dict[str, Any]]:
    """One row per trained model: name, val/test UAR, per-corpus test UAR; best validation UAR first."""
    order = {name: i for i, name in enumerate(_zoo_order(root))}
    rows = []
    for path in sorted((root / "metrics" / "models").glob("*.json")):
        if order and path.stem not in order:
            continue  # left by a model since removed from params.yaml
        m = _read(path)
        test, val = m.get("test") or {}, m.get("val") or {}
        rows.append({"model": path.stem, "val_uar": val.get("uar"), "test_uar": test.get("uar"),
                     "train_s": m.get("train_s"), "epochs_run": m.get("epochs_run"),
                     "stop_reason": m.get("stop_reason"),
                     "corpora": {k[4:]: v for k, v in sorted(test.items()) if k.startswith("uar_")}})
    rows.sort(key=lambda r: (r["val_uar"] is None, -(r["val_uar"] or 0.0), order.get(r["model"], len(order)),
                             r["model"]))
    return rows


STOP_REASONS = {  # a Keras model's metrics `stop_reason`, in words
    "early_stopping": "early stopping: validation loss stopped improving",
    "epochs": "ran every epoch, validation loss no longer falling",
    "epoch_cap_still_falling": "epoch cap reached with validation loss still falling",
}


def still_falling_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per model that stopped at its epoch cap while validation loss was still falling."""
    return [f"{r['model']} stopped at its {r['epochs_run']}-epoch cap with validation loss still falling "
            "(raise train.keras.epochs to let early stopping decide)"
            for r in rows if r.get("stop_reason") == "epoch_cap_still_falling"]


def _f(v: Any) -> str:
    return "  n/a" if v is None else f"{float(v):.3f}"


def summary(root: Path | str = ".", top: int = 5) -> str:
    root = Path(root)
    rows = model_scores(root)
    if not rows:
        return f"no model metrics under {root / 'metrics' / 'models'}: run `dvc repro` first"
    lines = []
    manifest = root / "metrics" / "manifest.json"
    if manifest.is_file():
        m = _read(manifest)
        s = m.get("splits", {})
        counts = "/".join(str(s.get(k, {}).get("speakers", "?")) for k in ("train", "val", "test"))
        lines.append(f"{m.get('utterances')} utterances, {m.get('speakers')} speakers "
                     f"(train/val/test {counts}); chance UAR {CHANCE:.3f}")
    width = max(len(r["model"]) for r in rows[:top])
    lines.append(f"top {min(top, len(rows))} of {len(rows)} models by validation UAR (test UAR never ranks):")
    lines.append(f"   {'model':<{width}}  val UAR  test UAR")
    for i, r in enumerate(rows[:top], 1):
        lines.append(f"{i:>2} {r['model']:<{width}}  {_f(r['val_uar']):>7}  {_f(r['test_uar']):>8}")
    best = rows[0]
    if best["corpora"]:
        per = ", ".join(f"{c} {_f(v).strip()}" for c, v in best["corpora"].items())
        lines.append(f"test UAR per corpus, {best['model']}: {per}")
    lines += still_falling_lines(rows)
    loso = sorted((root / "metrics" / "loso").glob("*.json"))
    if loso:
        parts = []
        for path in loso:
            m = _read(path)
            if m.get("skipped"):
                parts.append(f"{path.stem} skipped ({m.get('speakers')} speakers > train.loso_max_speakers "
                             f"{m.get('loso_max_speakers')}: see cv@{path.stem})")
                continue
            parts.append(f"{path.stem} {_f(m.get('uar_mean')).strip()} ± {_f(m.get('uar_std')).strip()} "
                         f"({m.get('folds')} speakers)")
        lines.append("leave-one-speaker-out UAR: " + "; ".join(parts))
    report = "run report: reports/index.html; " if (root / "reports" / "index.html").is_file() else ""
    lines.append(f"{report}table: reports/leaderboard.md; figures: plots/; DVC charts: make plots")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ser.summary", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository (default: here)")
    parser.add_argument("--top", type=int, default=5, help="models to list (default 5)")
    args = parser.parse_args(argv)
    print(summary(args.root, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
