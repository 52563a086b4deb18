"""`ser pipeline` with nothing to do, against `dvc repro` with nothing to do, on the same up-to-date project.

    python bench/pipeline_noop.py [--repeat 3] [--repo DIR]

Without --repo the project is built in a temporary folder: git + DVC, the repository's params.yaml,
flows/ and prefect.toml, and three small stages (one reads `seed`, one `demo.seed`, one the first's
output), reproduced once so that everything is up to date. With --repo, an existing up-to-date
project is timed in place (`ser pipeline --force` then writes .ser/ and reports/pipeline_diff.md there).

Timed in the same run, interleaved, --repeat times each (wall clock of the whole command):
- baseline `dvc repro` (DVC finds nothing stale);
- `ser pipeline` (DVC's status in-process, no Prefect);
- `ser pipeline --force` (what every no-op cost before: a temporary Prefect API, the flow, `dvc repro`,
  the metrics diff), with its own PREFECT_HOME in the temporary folder.
Printed: median and min per command, and the ratios of the medians to `dvc repro`.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PY = sys.executable
STAGES = {
    "make": {"cmd": f"{PY} -c \"open('out.txt', 'w').write('made')\"", "params": ["seed"], "outs": ["out.txt"]},
    "other": {"cmd": f"{PY} -c \"open('other.txt', 'w').write('other')\"", "params": ["demo.seed"],
              "outs": ["other.txt"]},
    "use": {"cmd": f"{PY} -c \"open('used.txt', 'w').write(open('out.txt').read())\"", "deps": ["out.txt"],
            "outs": ["used.txt"]},
}


def _check(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


def build_project(repo: Path, env: dict[str, str], dvc: str) -> Path:
    """A small git + DVC project with this repository's params.yaml and Prefect wiring, reproduced once."""
    import yaml

    repo.mkdir(parents=True)
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    shutil.copy(ROOT / "prefect.toml", repo / "prefect.toml")
    shutil.copytree(ROOT / "flows", repo / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": STAGES}, sort_keys=False))
    for cmd in (["git", "init", "-q"], [dvc, "init", "-q"], [dvc, "config", "core.analytics", "false"],
                [dvc, "repro", "-q"]):
        _check(cmd, repo, env)
    return repo


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    _check(cmd, cwd, env)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    from ser.status import dvc_executable, stale_stages

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command (default 3)")
    parser.add_argument("--repo", type=Path, help="an existing up-to-date project to time in place")
    args = parser.parse_args(argv)
    dvc = dvc_executable()
    with tempfile.TemporaryDirectory(prefix="pipeline-noop-") as tmp:
        env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PREFECT_HOME": str(Path(tmp) / "prefect-home"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        env.pop("PREFECT_API_URL", None)
        repo = args.repo.resolve() if args.repo else build_project(Path(tmp) / "project", env, dvc)
        stale = stale_stages(repo)
        if stale:
            raise SystemExit(f"{repo} is not up to date (stale: {', '.join(stale)}); run `dvc repro` first")
        commands = {
            "dvc repro": [dvc, "repro"],
            "ser pipeline": [PY, "-m", "ser.cli", "pipeline"],
            "ser pipeline --force": [PY, "-m", "ser.cli", "pipeline", "--force"],
        }
        seconds: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(args.repeat):
            for name, cmd in commands.items():
                seconds[name].append(timed(cmd, repo, env))
                print(f"run {i + 1}/{args.repeat} {name}: {seconds[name][-1]:.2f} s", flush=True)
    base = statistics.median(seconds["dvc repro"])
    print(f"\nno-op on {'the project ' + str(repo) if args.repo else 'a 3-stage project'}, "
          f"{args.repeat} runs each, interleaved")
    print(f"{'command':<22} {'median s':>9} {'min s':>7} {'/ dvc repro':>12}")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:<22} {median:>9.2f} {min(values):>7.2f} {median / base:>11.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
