"""Structure check: no import cycle and no function over 120 lines in the runtime packages.

Every import counts, the ones inside functions and under ``TYPE_CHECKING`` too: a cycle of
type-only imports is still two modules that cannot be understood apart. Run as
``python -m tests.structure``; exits 1 on a violation and names it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hub", "edge", "pipelines", "shaobing", "shaobing_tools")
MAX_LINES = 120


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name → file, for every module of :data:`PACKAGES`."""
    found: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str, path: Path, tree: ast.AST, known: dict[str, Path]) -> set[str]:
    out: set[str] = set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [_resolve(a.name, known) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            targets = [
                _resolve(f"{name}.{a.name}" if f"{name}.{a.name}" in known else name, known)
                for a in node.names
            ]
        else:
            continue
        out.update(t for t in targets if t and t != module)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def check(root: Path = ROOT) -> tuple[list[list[str]], list[str]]:
    """(import cycles, functions over :data:`MAX_LINES` lines as ``path:line name (n lines)``)."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    long: list[str] = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = _imported(module, path, tree, known)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_LINES:
                    rel = path.relative_to(root)
                    long.append(f"{rel}:{node.lineno} {node.name} ({n} lines)")
    return _cycles(graph), long


def main() -> int:
    cycles, long = check()
    for group in cycles:
        print(f"structure: import cycle among {', '.join(group)}", file=sys.stderr)
    for where in long:
        print(f"structure: function over {MAX_LINES} lines: {where}", file=sys.stderr)
    if cycles or long:
        return 1
    print(f"structure: ok ({len(modules())} modules, no cycle, no function over {MAX_LINES} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
