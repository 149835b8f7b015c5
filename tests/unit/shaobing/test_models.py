"""Model resolver (ARCHITECTURE §9): config path → $SHAOBING_MODELS → shared assets → cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from shaobing.models import ModelNotFound, fetch_model, load_manifest, resolve_model, sha256_file
from shaobing.paths import assets_dir


def test_manifest_names_sha_and_licence() -> None:
    manifest = load_manifest()
    assert {"yolov5n", "whisper-base"} <= set(manifest)
    for spec in manifest.values():
        assert spec.licence and spec.files
        assert all(len(f.sha256) == 64 for f in spec.files)


def test_yolov5n_resolves_to_the_shared_assets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SHAOBING_MODELS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_model("yolov5n") == assets_dir() / "models" / "yolov5n.onnx"


def test_env_folder_wins_and_paths_resolve_against_the_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "yolov5n.onnx").write_bytes(b"x")
    monkeypatch.setenv("SHAOBING_MODELS", str(tmp_path))
    assert resolve_model("yolov5n") == tmp_path / "yolov5n.onnx"
    (tmp_path / "mine.onnx").write_bytes(b"y")
    assert resolve_model("mine.onnx", base_dir=tmp_path) == tmp_path / "mine.onnx"


def test_unknown_model_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="manifest name"):
        resolve_model("gpt-17")
    with pytest.raises(ModelNotFound, match="not found"):
        resolve_model("missing/file.onnx", base_dir=tmp_path)


def test_fetch_copies_a_local_mirror_and_checks_sha256(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SHAOBING_MODELS", raising=False)
    out = fetch_model("yolov5n", dest=tmp_path, progress=False)
    assert out == tmp_path / "yolov5n.onnx"
    assert sha256_file(out) == load_manifest()["yolov5n"].files[0].sha256
