"""Model resolver (ARCHITECTURE §9) and the ``shaobing models`` subcommands.

Order: the path in config, ``$SHAOBING_MODELS``, ``../shared/assets/models`` beside the
checkout, the user cache (``~/.cache/shaobing/models``). Downloads happen only on an
explicit ``shaobing models fetch NAME``, and every file's sha256 is checked.

A models folder may hold a ``manifest.yaml`` of its own: the models made on the deployment
(``shaobing models quantize NAME`` writes ``NAME-int8`` there). Its entries add to the
packaged ones (a packaged name is never redefined) and resolve only in that folder. An
entry with ``default_for: NAME`` (written when its recall check passed) is what the name
``NAME`` resolves to; a path in the config still picks a file exactly.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shaobing.paths import assets_dir, project_root


class ModelNotFound(FileNotFoundError):
    """No copy of a model was found; the message says where we looked and what to run."""


@dataclass(frozen=True)
class ModelFile:
    """One file of a model artefact."""

    path: str
    sha256: str
    bytes: int
    url: str


@dataclass(frozen=True)
class ModelSpec:
    """A manifest entry."""

    name: str
    task: str
    format: str
    files: tuple[ModelFile, ...]
    layout: str | None = None
    classes: Any = None
    licence: str = ""
    dir: str | None = None
    home: str | None = None  # the models folder of a deployment entry (None: packaged)
    default_for: str | None = None  # a deployment entry that stands in for this name
    extra: Any = None  # the rest of a deployment entry (quantization, recall check …)

    @property
    def relpath(self) -> str:
        """Path (relative to a models folder) the resolver returns: the dir, else the single file."""
        return self.dir if self.dir else self.files[0].path


def manifest_path() -> Path:
    """The packaged ``models/manifest.yaml``."""
    return project_root() / "models" / "manifest.yaml"


LOCAL_MANIFEST = "manifest.yaml"
_SPEC_KEYS = {"task", "format", "files", "layout", "classes", "licence", "dir", "default_for"}


def load_manifest(path: Path | None = None) -> dict[str, ModelSpec]:
    """Read the manifest into specs by name (with ``path`` unset: the packaged one and the
    deployment manifests of the models folders)."""
    specs = _read_manifest(path or manifest_path(), None)
    if path is None:
        for d in search_dirs():
            local = d / LOCAL_MANIFEST
            if local.is_file():
                for name, spec in _read_manifest(local, d).items():
                    specs.setdefault(name, spec)
    return specs


def _read_manifest(p: Path, home: Path | None) -> dict[str, ModelSpec]:
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    specs: dict[str, ModelSpec] = {}
    for name, entry in (data.get("models") or {}).items():
        files = tuple(
            ModelFile(
                path=f["path"],
                sha256=f["sha256"],
                bytes=int(f.get("bytes", 0)),
                url=f.get("url", ""),
            )
            for f in entry.get("files", [])
        )
        specs[name] = ModelSpec(
            name=name,
            task=str(entry.get("task", "")),
            format=str(entry.get("format", "")),
            files=files,
            layout=entry.get("layout"),
            classes=entry.get("classes"),
            licence=str(entry.get("licence", "")),
            dir=entry.get("dir"),
            home=str(home) if home is not None else None,
            default_for=entry.get("default_for") if home is not None else None,
            extra={k: v for k, v in entry.items() if k not in _SPEC_KEYS} or None,
        )
    return specs


def search_dirs() -> list[Path]:
    """Folders searched for model files, in order."""
    dirs: list[Path] = []
    env = os.environ.get("SHAOBING_MODELS")
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(assets_dir() / "models")
    dirs.append(cache_dir())
    return dirs


def cache_dir() -> Path:
    """The user cache for fetched models."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shaobing" / "models"


def resolve_model(name_or_path: str, base_dir: Path | None = None) -> Path:
    """Find a model by config path or manifest name.

    Args:
        name_or_path: a file/folder path (absolute or relative to ``base_dir``) or a manifest name.
        base_dir: folder of the config the value came from.

    Raises:
        ModelNotFound: with the places searched and the command that fetches it.
    """
    looks_like_path = any(sep in name_or_path for sep in ("/", "\\")) or name_or_path.endswith(
        (".onnx", ".bin", ".xml")
    )
    if looks_like_path:
        p = Path(name_or_path).expanduser()
        if not p.is_absolute() and base_dir is not None:
            p = base_dir / p
        if p.exists():
            return p
        raise ModelNotFound(f"model file {name_or_path!r} not found (looked at {p})")
    manifest = load_manifest()
    if name_or_path not in manifest:
        raise ModelNotFound(
            f"model {name_or_path!r}: expected a path or a manifest name ({', '.join(sorted(manifest))})"
        )
    spec = manifest[name_or_path]
    stand_in = next(
        (
            s
            for s in manifest.values()
            if s.default_for == name_or_path and s.home and _present(Path(s.home), s)
        ),
        None,
    )
    if stand_in is not None:
        return Path(stand_in.home or "") / stand_in.relpath
    tried = []
    for d in [Path(spec.home)] if spec.home else search_dirs():
        candidate = d / spec.relpath
        tried.append(str(candidate))
        if _present(d, spec):
            return candidate
    raise ModelNotFound(
        f"model {name_or_path!r} not found in: {', '.join(tried)}; run `shaobing models fetch {name_or_path}`"
    )


def _present(folder: Path, spec: ModelSpec) -> bool:
    return (folder / spec.relpath).exists() and all((folder / f.path).exists() for f in spec.files)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch_model(name: str, dest: Path | None = None, progress: bool = True) -> Path:
    """Download a manifest model into the cache (or ``dest``), checking each sha256."""
    manifest = load_manifest()
    if name not in manifest:
        raise ModelNotFound(
            f"model {name!r}: expected a manifest name ({', '.join(sorted(manifest))})"
        )
    spec = manifest[name]
    root = dest or cache_dir()
    for f in spec.files:
        target = root / f.path
        if target.exists() and sha256_file(target) == f.sha256:
            continue
        # a copy already on this machine (shared assets) saves the download
        local = next((d / f.path for d in search_dirs() if (d / f.path).exists()), None)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            tmp_path = Path(tmp.name)
        try:
            if local is not None and local.resolve() != target.resolve():
                shutil.copyfile(local, tmp_path)
            else:
                if not f.url:
                    raise ModelNotFound(f"{name}: no URL for {f.path} in the manifest")
                _download(f.url, tmp_path, f.bytes, progress)
            got = sha256_file(tmp_path)
            if got != f.sha256:
                raise ValueError(f"{name}: {f.path}: expected sha256 {f.sha256}, found {got}")
            tmp_path.replace(target)
        finally:
            tmp_path.unlink(missing_ok=True)
    return root / spec.relpath


def _download(url: str, target: Path, size: int, progress: bool) -> None:
    import sys

    with urllib.request.urlopen(url, timeout=60) as resp, target.open("wb") as out:  # noqa: S310
        done = 0
        while block := resp.read(1 << 20):
            out.write(block)
            done += len(block)
            if progress and size:
                sys.stderr.write(f"\r{target.name}: {done * 100 // size}% ({done}/{size} bytes)")
        if progress:
            sys.stderr.write("\n")


def list_models() -> list[dict[str, Any]]:
    """Manifest entries with where each resolves here (or null)."""
    rows = []
    for name, spec in load_manifest().items():
        try:
            where: str | None = str(resolve_model(name))
        except ModelNotFound:
            where = None
        rows.append(
            {
                "name": name,
                "task": spec.task,
                "format": spec.format,
                "licence": spec.licence,
                "path": where,
            }
        )
    return rows
