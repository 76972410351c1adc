"""The house rules, checked on the source: the package is a stack of rooms and imports point down it, stages
are reached only through the CLI,
MLflow lives in one module, the simulator's truth is read by the evaluation stages only, and dvc.yaml
lists exactly the code and params each stage runs on.

Each rule is also shown to fail: on a planted cycle, a library importing a stage, a stray MLflow
import and a dvc.yaml with a dependency missing.
"""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from import_graph import PACKAGE, closure, cycles, graph, modules, stage_code_deps

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# The rooms, bottom to top: a module may import its own room and the rooms below it, never one above.
ROOMS = (
    "core",  # the platform: errors, vocabulary, settings, files, clock, engines, plots, paths, tracking
    "book",  # the raw tables: contracts, validation, sources, mappings
    "simulate",  # the simulated book and its truth
    "features",  # point-in-time features
    "risk",  # the overdue-risk model: training, scorecard, explanations, metrics, drift, report, scoring
    "compliance",  # the rule profiles with their sources
    "strategy",  # collection decisions: context, effects, plans, assignment, worklists, evaluation
    "portfolio",  # roll rates, vintages, cure and recovery, operations KPIs
    "workbench",  # the collectors' web app
    "stages",  # one file per command
)
TOP = {"huishou", "huishou.cli", "huishou.__main__", "huishou.api"}  # the only modules outside a room
LEAVES = {"huishou.core.errors", "huishou.core.vocab", "huishou.core.settings", "huishou.core.io", "huishou.core.clock"}
LEAF_MAY_IMPORT = {  # to raise user errors
    "huishou.core.settings": {"huishou.core.errors"},
    "huishou.core.io": {"huishou.core.errors"},
}
TRUTH_READERS = {
    "huishou.book.truth",
    "huishou.stages.simulate",
    "huishou.stages.evaluate",
    "huishou.stages.evaluate_strategy",
}


def _imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


# ---------------------------------------------------------------- the rules as functions of a source tree


def layer_violations(src: Path) -> list[str]:
    """Every broken layering rule under `src`, in words (empty when the house is in order)."""
    g = graph(src)
    out = [f"import cycle: {' <-> '.join(c)}" for c in cycles(g)]
    out += room_violations(g)
    for mod, deps in sorted(g.items()):
        is_stage = mod.startswith(f"{PACKAGE}.stages") or mod == f"{PACKAGE}.cli"
        stage_deps = {d for d in deps if d.startswith(f"{PACKAGE}.stages.")}
        if not is_stage and stage_deps:
            out.append(f"library {mod} imports stage(s) {sorted(stage_deps)}")
        if mod.startswith(f"{PACKAGE}.stages.") and stage_deps:
            out.append(f"stage {mod} imports other stage(s) {sorted(stage_deps)} (stages meet through files)")
        leaf = next((leaf for leaf in LEAVES if mod == leaf or mod.startswith(f"{leaf}.")), None)
        if leaf is not None:  # a leaf package's modules may import each other
            extra = {d for d in deps if d != leaf and not d.startswith(f"{leaf}.")}
            extra -= LEAF_MAY_IMPORT.get(leaf, set()) | {PACKAGE, f"{PACKAGE}.core"}
            if extra:
                out.append(f"leaf {mod} imports {sorted(extra)}")
    for mod, path in modules(src).items():
        names = _imported_names(path)
        if mod != f"{PACKAGE}.core.tracking" and any(n == "mlflow" or n.startswith("mlflow.") for n in names):
            out.append(f"{mod} imports mlflow (only huishou.core.tracking may)")
        if mod not in TRUTH_READERS and f"{PACKAGE}.book.truth" in names:
            out.append(f"{mod} imports the simulator's truth")
    return out


def room_of(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ROOMS) else None


def room_violations(g: dict[str, set[str]]) -> list[str]:
    """A module outside the rooms (beyond cli, __main__ and api), or an import up the stack of rooms."""
    out = []
    for mod, deps in sorted(g.items()):
        room = room_of(mod)
        if room is None:
            if mod not in TOP:
                out.append(f"{mod} stands outside the rooms {list(ROOMS)}")
            continue
        if room not in ROOMS:
            out.append(f"{mod} is in an unknown room '{room}' (add it to ROOMS, in its place)")
            continue
        for dep in sorted(deps):
            other = room_of(dep)
            if other in ROOMS and ROOMS.index(other) > ROOMS.index(room):
                out.append(f"{mod} ({room}) imports {dep} ({other}), a room above it")
    return out


def dvc_violations(dvc: dict, src: Path, root: Path) -> list[str]:
    """Where dvc.yaml's code deps and params differ from what each stage's code imports and declares."""
    out = []
    for name, stage in dvc["stages"].items():
        listed = sorted(d for d in stage.get("deps", []) if str(d).startswith("src/"))
        expected = stage_code_deps(src, name, root)
        if listed != expected:
            out.append(
                f"{name}: code deps missing {sorted(set(expected) - set(listed))}, "
                f"not imported {sorted(set(listed) - set(expected))}"
            )
        declared = list(importlib.import_module(f"{PACKAGE}.stages.{name}").PARAMS)
        if sorted(stage.get("params", [])) != sorted(declared):
            out.append(f"{name}: params {stage.get('params', [])} but the stage declares {declared}")
    return out


# ---------------------------------------------------------------- the rules hold


def test_imports_point_down_and_mlflow_and_truth_stay_in_their_rooms():
    assert layer_violations(SRC) == []


def test_dvc_yaml_lists_every_module_and_param_each_stage_runs_on():
    assert dvc_violations(yaml.safe_load((ROOT / "dvc.yaml").read_text()), SRC, ROOT) == []


def test_every_dvc_stage_is_a_cli_command_of_a_stage_file():
    from huishou.cli import COMMANDS

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        command = stage["cmd"].split()[1]
        assert COMMANDS[command].stage == name


def test_dvc_only_the_evaluation_stages_depend_on_truth():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    truth = yaml.safe_load((ROOT / "params.yaml").read_text())["data"]["truth_dir"]
    readers = [name for name, st in stages.items() if truth in st.get("deps", [])]
    writers = [name for name, st in stages.items() if truth in st.get("outs", [])]
    assert readers == ["evaluate", "evaluate_strategy"] and writers == ["simulate"]


def test_no_other_module_names_the_truth_folder():
    # the settings define the folder, the simulator writes it, the CLI's help says so
    allowed = TRUTH_READERS | {"huishou.core.settings", "huishou.cli", "huishou.simulate.book"}
    offenders = [
        m
        for m, p in modules(SRC).items()
        if m not in allowed
        and not m.startswith("huishou.core.settings.")
        and ("truth_dir" in p.read_text() or "data/truth" in p.read_text())
    ]
    assert offenders == []


def test_package_inits_only_re_export():
    for mod, path in modules(SRC).items():
        if path.name != "__init__.py":
            continue
        body = [
            n
            for n in ast.parse(path.read_text()).body
            if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
        ]  # docstring
        kinds = {type(n) for n in body}
        assert kinds <= {ast.ImportFrom, ast.Import, ast.Assign}, f"{mod} holds logic: {kinds}"
        for node in body:
            if isinstance(node, ast.Assign):
                names = {t.id for t in node.targets if isinstance(t, ast.Name)}
                assert names <= {"__all__", "__version__", "ADAPTERS"}, f"{mod} assigns {names}"


def test_a_moved_module_keeps_its_old_path_with_a_warning():
    code = (
        "import warnings\nwarnings.simplefilter('error')\nimport huishou\n"
        "try:\n    import huishou.model\nexcept DeprecationWarning as w:\n    print('WARNED', w)\n"
        "warnings.simplefilter('ignore')\nimport huishou.model as old, huishou.risk.model as new\n"
        "from huishou.artifacts import load_features\nfrom huishou.features import load_features as lf\n"
        "print('SAME', old is new, load_features is lf)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "WARNED huishou.model has moved to huishou.risk.model" in out.stdout, out.stdout + out.stderr
    assert "SAME True True" in out.stdout, out.stdout + out.stderr


def test_help_does_not_load_the_heavy_libraries():
    code = (
        "import sys\nfrom huishou.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('lightgbm', 'sklearn', 'mlflow', 'duckdb', 'pandas', 'dask') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "usage: huishou" in out.stdout and "HEAVY []" in out.stdout, out.stdout + out.stderr


# ---------------------------------------------------------------- ... and would fail if broken


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the package to break on purpose."""
    shutil.copytree(SRC / PACKAGE, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_a_planted_cycle_is_found_even_inside_a_function(tree):
    model = tree / PACKAGE / "risk" / "model.py"  # explain imports model; model now imports explain, late
    model.write_text(model.read_text() + "\n\ndef _late():\n    from huishou.risk.explain import reason_codes\n")
    found = layer_violations(tree)
    assert any(
        v.startswith("import cycle:") and "huishou.risk.explain" in v and "huishou.risk.model" in v for v in found
    )


def test_a_library_importing_a_stage_is_found(tree):
    metrics = tree / PACKAGE / "risk" / "metrics.py"
    metrics.write_text(metrics.read_text() + "\nfrom huishou.stages import train as _t\n")
    assert any("library huishou.risk.metrics imports stage" in v for v in layer_violations(tree))


def test_mlflow_outside_tracking_is_found(tree):
    explain = tree / PACKAGE / "risk" / "explain.py"
    explain.write_text(explain.read_text() + "\nimport mlflow.pyfunc\n")
    assert "huishou.risk.explain imports mlflow (only huishou.core.tracking may)" in layer_violations(tree)


def test_truth_read_by_a_training_module_is_found(tree):
    train = tree / PACKAGE / "risk" / "train.py"
    train.write_text(train.read_text() + "\nfrom huishou.book import truth as _truth\n")
    assert "huishou.risk.train imports the simulator's truth" in layer_violations(tree)


def test_an_import_up_the_rooms_is_found(tree):
    """features sit below the risk model: a feature module reaching up for the model breaks the stack."""
    build = tree / PACKAGE / "features" / "build.py"
    build.write_text(build.read_text() + "\n\ndef _late():\n    from huishou.risk.model import RiskModel\n")
    found = layer_violations(tree)
    assert "huishou.features.build (features) imports huishou.risk.model (risk), a room above it" in found


def test_a_loose_module_at_the_top_is_found(tree):
    (tree / PACKAGE / "helpers.py").write_text("X = 1\n")
    assert any(v.startswith("huishou.helpers stands outside the rooms") for v in layer_violations(tree))


def test_a_missing_code_dep_or_param_in_dvc_yaml_is_found():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    dvc["stages"]["score"]["deps"].remove("src/huishou/risk/explain.py")
    dvc["stages"]["strategy"]["params"].remove("features.default_dpd")
    found = dvc_violations(dvc, SRC, ROOT)
    assert any(v.startswith("score: code deps missing ['src/huishou/risk/explain.py']") for v in found)
    assert any(v.startswith("strategy: params") for v in found)


def test_a_new_import_makes_the_dvc_deps_stale(tree):
    """Code deps follow imports transitively: a module newly imported deep down is a new dep of the stage."""
    before = stage_code_deps(tree, "validate", tree)
    contracts = tree / PACKAGE / "book" / "contracts.py"
    contracts.write_text(contracts.read_text() + "\nfrom huishou.risk import drift as _drift\n")
    after = stage_code_deps(tree, "validate", tree)
    assert set(after) - set(before) == {f"{PACKAGE}/risk/__init__.py", f"{PACKAGE}/risk/drift.py"}
    assert closure(graph(tree), f"{PACKAGE}.stages.validate") >= {f"{PACKAGE}.risk.drift"}
