"""Import-direction check (ARCHITECTURE §2): edge → pipelines → shaobing, hub → shaobing.

The tools (``shaobing_tools``: benchmarks, load generation, training, quantization) sit
above the edge: they may import it, and no runtime package imports them.

Static: every import statement of every module is checked against the rules below.
Dynamic: importing the hub (and ``pipelines``) in a fresh interpreter must not load the
edge's heavy libraries. Run as ``python -m tests.import_direction``; exits 1 on a violation.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STDLIB = set(sys.stdlib_module_names)

# package → top-level modules it must never import
FORBIDDEN: dict[str, set[str]] = {
    "shaobing": {
        "edge",
        "hub",
        "pipelines",
        "cv2",
        "onnxruntime",
        "torch",
        "numpy",
        "fastapi",
        "sqlalchemy",
        "shaobing_tools",
    },
    "pipelines": {
        "edge",
        "hub",
        "paho",
        "fastapi",
        "sqlite3",
        "sqlalchemy",
        "uvicorn",
        "onnxruntime",
        "torch",
        "starlette",
        "shaobing_tools",
    },
    "hub": {
        "edge",
        "cv2",
        "onnxruntime",
        "torch",
        "ultralytics",
        "faster_whisper",
        "shaobing_tools",
    },
    "edge": {"hub", "torch", "ultralytics", "shaobing_tools"},
    "shaobing_tools": {"hub", "torch", "ultralytics"},
}
# modules allowed to import lazily inside functions (the CLI root and the demo orchestrator)
LAZY_OK = {
    "shaobing/cli.py",
    "shaobing/demo.py",
    "shaobing/broker.py",
    "shaobing_tools/bench_edge.py",
}
# (shaobing_tools/bench_edge.py runs the Ultralytics baseline lazily, only where the train extra is installed)
# the hub may use the pure text extraction
HUB_ALLOWED_PIPELINES = {"pipelines.report_extract", "pipelines.base"}
# the project's own modules that import the standard library only (report extraction may use them)
STDLIB_ONLY = {"shaobing.severity"}
# training code is the one place torch/ultralytics may appear (train extra)
TRAIN_OK = {"shaobing_tools/train.py"}


def _imports(tree: ast.AST, top_level_only: bool) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    nodes = ast.iter_child_nodes(tree) if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif top_level_only and isinstance(node, (ast.If, ast.Try)):
            # `if TYPE_CHECKING:` blocks are not runtime imports
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            out.extend(_imports(node, True))
    return out


def static_violations() -> list[str]:
    """Every forbidden import in the source tree."""
    problems: list[str] = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in TRAIN_OK:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
            for lineno, name in _imports(tree, top_level_only=rel in LAZY_OK):
                top = name.split(".")[0]
                if package == "hub" and top == "pipelines":
                    if name not in HUB_ALLOWED_PIPELINES:
                        problems.append(
                            f"{rel}:{lineno}: hub may import only {sorted(HUB_ALLOWED_PIPELINES)}, found {name}"
                        )
                    continue
                if top in forbidden:
                    problems.append(
                        f"{rel}:{lineno}: {package} must not import {top} (found `{name}`)"
                    )
            if package == "pipelines":
                text = path.read_text(encoding="utf-8")
                if "VideoCapture" in text:
                    problems.append(
                        f"{rel}: pipelines must not open cameras or files (VideoCapture)"
                    )
                if rel == "pipelines/report_extract.py":
                    for lineno, name in _imports(tree, top_level_only=False):
                        top = name.split(".")[0]
                        if top not in STDLIB and top != "pipelines" and name not in STDLIB_ONLY:
                            problems.append(
                                f"{rel}:{lineno}: report extraction imports the standard library only, found {name}"
                            )
    return problems


RUNTIME_CHECKS = {
    "hub": (
        "import importlib, pkgutil, hub\n"
        "for m in pkgutil.walk_packages(hub.__path__, 'hub.'):\n"
        "    if '.migrations' in m.name: continue\n"
        "    importlib.import_module(m.name)\n",
        {"cv2", "onnxruntime", "torch", "edge", "ultralytics"},
    ),
    "pipelines": (
        "import pipelines\n",
        {"numpy", "cv2", "onnxruntime", "torch", "paho", "fastapi", "sqlalchemy"},
    ),
    "shaobing.cli": (
        "import shaobing.cli, shaobing.contract, shaobing.config\n",
        {"numpy", "cv2", "onnxruntime", "torch", "fastapi", "sqlalchemy", "edge", "hub"},
    ),
}


def runtime_violations() -> list[str]:
    """Heavy modules loaded by importing each package in a fresh interpreter."""
    problems = []
    for name, (code, forbidden) in RUNTIME_CHECKS.items():
        probe = (
            code
            + f"import sys, json; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(forbidden)!r})))"
        )
        res = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        if res.returncode != 0:
            problems.append(
                f"importing {name} failed: {res.stderr.strip().splitlines()[-1] if res.stderr else res.returncode}"
            )
            continue
        loaded = [
            m
            for m in __import__("json").loads(res.stdout.strip().splitlines()[-1])
            if m.split(".")[0] in forbidden
        ]
        if loaded:
            problems.append(f"importing {name} loads {sorted({m.split('.')[0] for m in loaded})}")
    return problems


def main() -> int:
    """Print violations; 1 when any."""
    problems = static_violations() + runtime_violations()
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print("import direction: ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
