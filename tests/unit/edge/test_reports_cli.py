"""``shaobing report extract | eval | transcribe`` through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shaobing.paths import shared_dir

ROOT = Path(__file__).resolve().parents[3]
DEV_TSV = shared_dir() / "data" / "reports" / "reports_dev.tsv"
AUDIO_DIR = shared_dir() / "data" / "reports" / "audio"


def cli(
    *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shaobing.cli", "report", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_extract_one_text_json() -> None:
    r = cli("extract", "渝北区龙溪街道松石社区三栋楼下消防通道被一辆红色轿车堵住了", "--json")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert obj["type"] == "fire_lane_blocked"
    assert obj["types"][0] == "fire_lane_blocked"
    assert obj["severity"] == "normal"
    assert obj["location"]["address"] == "渝北区龙溪街道松石社区3栋"
    assert obj["location"]["grid_id"] == "yubei-longxi-01"
    assert obj["summary"] and 0 <= obj["confidence"] <= 1


def test_extract_stdin_one_object_per_line_in_order() -> None:
    lines = ["北碚区天府镇兴隆村有人落水了", "", "   ", "缙云社区垃圾堆了好几天没人清理", "？？"]
    r = cli("extract", "-", "--json", stdin="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.strip("\n").split("\n")]
    assert len(out) == len(lines)
    assert [o["type"] for o in out] == ["drowning", "other", "other", "sanitation", "other"]
    assert out[0]["severity"] == "emergency"
    assert out[1]["needs_confirmation"] and out[4]["needs_confirmation"]


def test_extract_bad_usage_and_bad_config(tmp_path: Path) -> None:
    assert cli("extract", "", "--json").returncode == 2
    bad = tmp_path / "edge.yaml"
    bad.write_text("node_id: n1\nno_such_key: 1\n", encoding="utf-8")
    r = cli("extract", "有人落水", "--json", "-c", str(bad))
    assert r.returncode == 2
    assert "no_such_key" in r.stderr and r.stdout == ""


def test_extract_uses_config_registry(tmp_path: Path) -> None:
    reg = tmp_path / "registry.yaml"
    reg.write_text(
        "kind: registry\ndistricts:\n  - id: d1\n    name: 南岸区\n    towns:\n      - id: t1\n        name: 南坪街道\n"
        "        communities:\n          - id: c1\n            name: 响水路社区\n            grids:\n"
        "              - {id: g-xs-1, name: 响水路社区第一网格}\n",
        encoding="utf-8",
    )
    cfg = tmp_path / "edge.yaml"
    cfg.write_text("node_id: n1\nregistry: registry.yaml\n", encoding="utf-8")
    r = cli("extract", "响水路社区有人占道摆摊", "--json", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["location"]["grid_id"] == "g-xs-1"


@pytest.mark.skipif(not DEV_TSV.is_file(), reason="dev set not present")
def test_eval_text_set() -> None:
    r = cli("eval", str(DEV_TSV), "--json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["n"] == 30
    assert obj["type_acc"] >= 0.95 and obj["location_acc"] >= 0.95 and obj["severity_acc"] >= 0.9
    assert isinstance(obj["misses"], list)


def test_eval_scores_misses(tmp_path: Path) -> None:
    tsv = tmp_path / "set.tsv"
    tsv.write_text(
        "text\ttypes\tlocation\tseverities\n"
        "缙云社区有人在河边游泳\twater_danger_intrusion\t缙云社区\turgent\n"
        "缙云社区有人在河边游泳\tnoise\t天府镇\tnormal\n",
        encoding="utf-8",
    )
    r = cli("eval", str(tsv), "--json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert (obj["n"], obj["type_acc"], obj["location_acc"], obj["severity_acc"]) == (
        2,
        0.5,
        0.5,
        0.5,
    )
    assert obj["misses"][0]["line"] == 3 and set(obj["misses"][0]["wrong"]) == {
        "type",
        "location",
        "severity",
    }


def test_eval_bad_tsv(tmp_path: Path) -> None:
    tsv = tmp_path / "bad.tsv"
    tsv.write_text("a\tb\n1\t2\n", encoding="utf-8")
    assert cli("eval", str(tsv), "--json").returncode == 2
    assert cli("eval", str(tmp_path / "missing.tsv"), "--json").returncode == 2


@pytest.mark.skipif(not (AUDIO_DIR / "dev_10.wav").is_file(), reason="spoken dev set not present")
def test_transcribe_json(tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEnot really audio")
    r = cli("transcribe", str(AUDIO_DIR / "dev_10.wav"), str(broken), "--json", timeout=240)
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.strip().splitlines()]
    assert [o["file"] for o in out] == [str(AUDIO_DIR / "dev_10.wav"), str(broken)]
    assert 5.0 < out[0]["duration_s"] < 8.0
    assert "燃气" in out[0]["text"] or "报警" in out[0]["text"]
    assert out[1]["text"] is None and out[1]["error"]
    assert cli("transcribe", str(tmp_path / "nope.wav"), "--json").returncode == 2
