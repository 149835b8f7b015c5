"""ARCHITECTURE §2 import direction, checked statically and in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys

from tests import import_direction


def test_no_forbidden_imports_in_the_source() -> None:
    assert import_direction.static_violations() == []


def test_importing_the_hub_loads_no_edge_libraries() -> None:
    assert import_direction.runtime_violations() == []


def test_hub_never_imports_cv2() -> None:
    code = "import hub, hub.app, hub.store, hub.serve, sys; assert 'cv2' not in sys.modules and 'onnxruntime' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_checker_catches_a_violation(tmp_path, monkeypatch) -> None:
    bad = tmp_path / "pipelines"
    bad.mkdir()
    (bad / "oops.py").write_text("import paho.mqtt.client\n")
    for pkg in ("shaobing", "hub", "edge"):
        (tmp_path / pkg).mkdir()
    monkeypatch.setattr(import_direction, "ROOT", tmp_path)
    problems = import_direction.static_violations()
    assert problems and "pipelines must not import paho" in problems[0]
