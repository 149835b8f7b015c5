"""Config errors name the file, the line and the key path, expected vs found."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shaobing.config import ConfigError, load_edge_config, load_hub_config, split_hostport
from shaobing.paths import configs_dir


def write(tmp_path: Path, text: str, name: str = "edge.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_minimal_edge_config_needs_only_node_id(tmp_path: Path) -> None:
    cfg = load_edge_config(write(tmp_path, "node_id: gw-01\n"))
    assert cfg.cameras == [] and cfg.sensors == []
    assert (
        cfg.detector.model == "yolov5n"
        and cfg.detector.batch == 1
        and cfg.detector.confidence == 0.35
    )
    assert cfg.resolve("data/x").parent.parent == tmp_path


def test_unknown_key_names_file_line_and_path(tmp_path: Path) -> None:
    p = write(tmp_path, "node_id: n1\ndetector:\n  model: yolov5n\n  confidance: 0.5\n")
    with pytest.raises(ConfigError) as err:
        load_edge_config(p)
    (issue,) = err.value.issues
    assert issue.line == 4 and issue.path == "detector.confidance"
    assert str(issue).startswith(f"{p}:4 detector.confidance: expected")


def test_wrong_value_type_and_range(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "node_id: n1\ncameras:\n  - id: cam1\n    url: a.mp4\n    detect_fps: fast\n    pipelines: {}\n  - id: cam2\n    url: b.mp4\n    detect_fps: -1\n    pipelines: {}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_edge_config(p)
    by_path = {i.path: i for i in err.value.issues}
    assert (
        by_path["cameras.0.detect_fps"].line == 5
        and "found 'fast'" in by_path["cameras.0.detect_fps"].message
    )
    assert (
        by_path["cameras.1.detect_fps"].line == 9
        and "found -1" in by_path["cameras.1.detect_fps"].message
    )


def test_missing_required_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_edge_config(write(tmp_path, "cameras: []\n"))
    assert err.value.issues[0].path == "node_id"
    assert "required" in err.value.issues[0].message


def test_pipeline_options_and_zone_references_are_checked(tmp_path: Path) -> None:
    from pipelines.registry import options_models

    p = write(
        tmp_path,
        "node_id: n1\ncameras:\n  - id: cam1\n    url: a.mp4\n    zones: {lane: [[0, 0], [10, 0], [10, 10]]}\n"
        "    pipelines:\n      zone_intrusion: {zone: river, classes: [person]}\n      teleport: {}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_edge_config(p, options_models())
    text = str(err.value)
    assert (
        f"{p}:7 cameras.0.pipelines.zone_intrusion.zone: expected a zone of this camera (lane), found 'river'"
        in text
    )
    assert f"{p}:8 cameras.0.pipelines.teleport: expected a pipeline name" in text


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_edge_config(write(tmp_path, "node_id: n1\ncameras: [\n  - id: x\n"))
    assert err.value.issues[0].line is not None and "invalid YAML" in err.value.issues[0].message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a config file"):
        load_hub_config(tmp_path / "nope.yaml")


def test_hub_sqlite_path_resolves_against_the_config(tmp_path: Path) -> None:
    cfg = load_hub_config(write(tmp_path, "kind: hub\ndb: sqlite:///data/h.sqlite\n", "hub.yaml"))
    assert cfg.db_url() == f"sqlite:///{(tmp_path / 'data' / 'h.sqlite').resolve()}"
    assert cfg.auth.anonymous_read is False  # off by default in production


def test_split_hostport() -> None:
    assert split_hostport("0.0.0.0:8080") == ("0.0.0.0", 8080)
    with pytest.raises(ValueError, match="HOST:PORT"):
        split_hostport("localhost")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shaobing.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_config_validate_cli_exit_codes(tmp_path: Path) -> None:
    good = run_cli(
        "config",
        "validate",
        str(configs_dir() / "demo" / "edge.yaml"),
        str(configs_dir() / "hub.example.yaml"),
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout == ""
    bad = write(tmp_path, "node_id: n1\nbroker:\n  url: http://wrong\n")
    res = run_cli("config", "validate", str(bad))
    assert res.returncode == 2
    assert f"{bad}:3 broker.url: expected mqtt://host:port" in res.stderr


def test_every_shipped_config_is_valid() -> None:
    files = sorted(str(p) for p in configs_dir().rglob("*.yaml") if "deploy" not in p.parts)
    res = run_cli("config", "validate", *files)
    assert res.returncode == 0, res.stderr


def test_validate_names_a_missing_extra_instead_of_checking_less() -> None:
    """The hub extra stands missing (a None in sys.modules: an import that fails, which a
    development environment cannot cause otherwise): validate fails and says which extra."""
    import subprocess
    import sys

    from shaobing.paths import configs_dir

    code = (
        "import sys; sys.modules['hub.serve'] = None; from shaobing.cli import main; "
        f"sys.exit(main(['config', 'validate', {str(configs_dir() / 'demo' / 'hub.yaml')!r}]))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "needs the hub extra" in res.stderr and "shaobing[hub]" in res.stderr
