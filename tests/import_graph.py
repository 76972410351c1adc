"""The project's import graph, read from the source (function-local imports included), and what each
DVC stage therefore depends on. Used by test_architecture.py; `python tests/import_graph.py` prints
the code deps and params every stage should list in dvc.yaml, `--write` puts them there.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "huishou"


def modules(src: Path) -> dict[str, Path]:
    """Every module of the package under `src` (e.g. src/), by dotted name."""
    out = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _parents(name: str) -> list[str]:
    """Importing a.b.c runs a, a.b and a.b.c."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules one module imports, anywhere in its body, each with the packages above it except the
    module's own packages (they are already being imported when its body runs)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base]
            targets += [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
        for target in targets:
            if target.split(".")[0] == PACKAGE:
                found |= {m for m in _parents(target) if m in known}
    own = set(_parents(name))
    if not is_package:
        own.discard(name)
    return found - own - {name}


def graph(src: Path) -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    mods = modules(src)
    known = set(mods)
    return {name: imports_of(path, name, known) for name, path in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a module importing itself)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in g.get(v, ()):
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def closure(g: dict[str, set[str]], start: str) -> set[str]:
    """`start` and every module it imports, transitively (with the packages above each)."""
    seen, todo = set(), [*_parents(start)]
    while todo:
        m = todo.pop()
        if m in seen or m not in g:
            continue
        seen.add(m)
        todo.extend(g[m])
    return seen


def stage_code_deps(src: Path, stage: str, root: Path = ROOT) -> list[str]:
    """The source files a stage runs: its stage file and every project module it imports, transitively."""
    mods = modules(src)
    g = graph(src)
    return sorted(mods[m].relative_to(root).as_posix() for m in closure(g, f"{PACKAGE}.stages.{stage}"))


def write_dvc_yaml(path: Path = ROOT / "dvc.yaml") -> None:
    """Rewrite each stage's code deps and params in dvc.yaml from the code (other entries kept as they are)."""
    import importlib
    import re

    import yaml

    doc = yaml.safe_load(path.read_text())
    for name, stage in doc["stages"].items():
        data = [d for d in stage.get("deps", []) if not str(d).startswith("src/")]
        stage["deps"] = data + stage_code_deps(ROOT / "src", name)
        stage["params"] = list(importlib.import_module(f"{PACKAGE}.stages.{name}").PARAMS)
        order = ["cmd", "deps", "params", "outs", "metrics", "plots"]
        doc["stages"][name] = {k: stage[k] for k in order if k in stage} | {
            k: v for k, v in stage.items() if k not in order
        }
    text = yaml.safe_dump(doc, sort_keys=False, width=120, indent=2)
    path.write_text(re.sub(r"\n  (\w+):\n    cmd", r"\n\n  \1:\n    cmd", text))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    if "--write" in sys.argv:
        write_dvc_yaml()
        print("dvc.yaml: code deps and params rewritten from the code")
        sys.exit(0)
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage in stages:
        module = __import__(f"huishou.stages.{stage}", fromlist=["PARAMS"])
        print(f"{stage}:\n  code deps:")
        for dep in stage_code_deps(ROOT / "src", stage):
            print(f"      - {dep}")
        print("  params:")
        for p in module.PARAMS:
            print(f"      - {p}")
