"""dvc.yaml lists every project module a stage runs, and project modules import no cycle.

The import graph is read from the code with `ast` (imports inside functions count: they run too).
A stage's cmd names its entry module (`python -m ser.stages.train`, `python -m flows.features`);
its deps must hold that module and everything it imports from ser/, flows/ and tasks/, transitively,
including the packages' __init__.py files that Python runs on the way.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ser", "flows", "tasks")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules `name` imports anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from ser import corpora` imports the module ser.corpora; `from ser import EMOTIONS` imports ser
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import ser.x.y` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports(name, path, modules) for name, path in modules.items()}


def closure(entry: str, edges: dict[str, set[str]]) -> set[str]:
    """`entry`, everything it imports transitively, and the packages Python initialises on the way."""
    seen, todo = set(), [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += edges[name]
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in edges]
    return seen


def stage_entries() -> dict[str, tuple[str, list[str]]]:
    """Stage name -> (entry module of its cmd, its deps)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        match = re.search(r"python -m ([\w.]+)", body["cmd"])
        assert match, f"stage {name}: cmd must run a project module with `python -m` ({body['cmd']!r})"
        out[name] = (match.group(1), [str(d) for d in body.get("deps", [])])
    return out


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


def missing_deps(entry: str, deps: list[str]) -> list[str]:
    files = module_files()
    return sorted(files[m].relative_to(ROOT).as_posix() for m in closure(entry, graph()) if not covered(files[m], deps))


@pytest.mark.parametrize("stage", sorted(stage_entries()))
def test_stage_deps_are_closed_under_imports(stage):
    entry, deps = stage_entries()[stage]
    assert entry in module_files(), f"stage {stage}: {entry} is not a project module"
    assert not missing_deps(entry, deps), (
        f"stage {stage} runs {entry}, which imports files its deps do not list: {missing_deps(entry, deps)}")


def test_every_listed_code_dep_exists():
    for stage, (_, deps) in stage_entries().items():
        for dep in deps:
            if dep.split("/")[0] in PACKAGES:
                assert (ROOT / dep).exists(), f"stage {stage} lists {dep}, which does not exist"


def test_bytecode_in_a_code_folder_dep_changes_no_stage():
    """Folder deps (ser/models, ser/corpora) hold __pycache__ once any interpreter that writes bytecode imports
    them: DVC must not hash it, or every stage using the folder reruns after a plain `ser predict`."""
    from dvc.repo import Repo

    folders = {d.rstrip("/") for _, deps in stage_entries().values() for d in deps
               if d.split("/")[0] in PACKAGES and (ROOT / d).is_dir()}
    assert folders, "no stage lists a code folder"
    ignore = Repo(str(ROOT)).dvcignore
    for folder in sorted(folders):
        cache = f"{ROOT}/{folder}/__pycache__"
        assert ignore.is_ignored(ignore.fs, f"{cache}/base.cpython-311.pyc"), f"{folder}/__pycache__ is hashed"
        assert not ignore.is_ignored(ignore.fs, f"{ROOT}/{folder}/__init__.py")


def test_the_feature_writer_locks_change_no_stage():
    """Later stages list data/features whole; the features stage's lock files beside the tables must not be
    hashed with it, or every run that took a lock would look like a change to them."""
    from dvc.repo import Repo

    from ser.stages.features import writer_lock

    assert any(d == "data/features" for _, deps in stage_entries().values() for d in deps)
    ignore = Repo(str(ROOT)).dvcignore
    assert ignore.is_ignored(ignore.fs, f"{ROOT}/data/features/.ser-lock-demo")
    assert not ignore.is_ignored(ignore.fs, f"{ROOT}/data/features/pooled/corpus=demo/split=train/part-00000.parquet")
    assert "`out_dir/.ser-lock-<corpus>`" in writer_lock.__doc__  # the name .dvcignore matches


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checker_sees_a_cycle_and_a_missing_dep():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert "ser/params.py" in missing_deps("ser.stages.train", ["ser/stages/train.py"])


if __name__ == "__main__":  # print each stage's closure, to paste into dvc.yaml
    files = module_files()
    for stage, (entry, _) in stage_entries().items():
        print(stage, entry)
        for m in sorted(closure(entry, graph())):
            print("   ", files[m].relative_to(ROOT).as_posix())
