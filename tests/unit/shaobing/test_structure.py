"""The structure check finds what it is for: cycles (type-only ones too) and long functions."""

from __future__ import annotations

from pathlib import Path

from tests import structure


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_tree_as_it_is_has_no_cycle_and_no_long_function() -> None:
    cycles, long = structure.check()
    assert cycles == [] and long == []


def test_a_cycle_through_a_type_only_import_is_found(tmp_path: Path) -> None:
    _write(tmp_path, "hub/__init__.py", "")
    _write(tmp_path, "hub/a.py", "from hub.b import B\n")
    _write(
        tmp_path,
        "hub/b.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hub import a\nB = 1\n",
    )
    _write(tmp_path, "hub/c.py", "def f():\n    from . import a\n")  # into the cycle, not of it
    cycles, long = structure.check(tmp_path)
    assert cycles == [["hub.a", "hub.b"]]
    assert long == []


def test_an_import_inside_a_function_closes_a_cycle(tmp_path: Path) -> None:
    _write(tmp_path, "edge/__init__.py", "")
    _write(tmp_path, "edge/node.py", "import edge.http\n")
    _write(tmp_path, "edge/http.py", "def app():\n    from .node import Node\n")
    cycles, _ = structure.check(tmp_path)
    assert cycles == [["edge.http", "edge.node"]]


def test_a_function_over_the_limit_is_named(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(structure.MAX_LINES))
    _write(tmp_path, "pipelines/__init__.py", "")
    _write(tmp_path, "pipelines/big.py", "def big():\n" + body + "\ndef small():\n    pass\n")
    cycles, long = structure.check(tmp_path)
    assert cycles == []
    assert long == [f"pipelines/big.py:1 big ({structure.MAX_LINES + 1} lines)"]
