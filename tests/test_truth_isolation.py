"""data/truth is read by the evaluation steps only (model and strategy): checked on imports, source and dvc.yaml."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "huishou"
ALLOWED = {"simulate.py", "evaluate.py", "truth.py", "config.py", "strategy/truth_eval.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_simulate_and_the_evaluation_steps_import_truth():
    offenders = [p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")
                 if "huishou.truth" in _imports(p) and p.relative_to(SRC).as_posix() not in ALLOWED]
    assert offenders == []


def test_no_other_module_names_the_truth_folder():
    offenders = [p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")
                 if p.relative_to(SRC).as_posix() not in ALLOWED
                 and ("truth_dir" in p.read_text() or "data/truth" in p.read_text())]
    assert offenders == []


def test_dvc_only_evaluate_depends_on_truth():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    readers = [name for name, st in stages.items() if any("truth" in str(d) for d in st.get("deps", []))]
    writers = [name for name, st in stages.items() if any("truth" in str(o) for o in st.get("outs", []))]
    assert readers == ["evaluate", "evaluate_strategy"]
    assert writers == ["simulate"]
