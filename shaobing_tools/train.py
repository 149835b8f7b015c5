"""Training and export of extra detector models (``shaobing models train|export``; train extra).

``shaobing models train fire-smoke --data DIR`` trains an Ultralytics YOLO detector on a
dataset in YOLO layout (D-Fire and most public fire/smoke sets are published that way),
exports the best weights to ONNX (``[1, 4+C, N]``, the ``yolov8`` layout the runtime reads),
and prints the ``models/manifest.yaml`` entry to add (name, sha256, bytes, classes, layout).
Put the ONNX file where the resolver looks (``$SHAOBING_MODELS`` or the user cache) and name
it in ``detector.extra_models``; the ``smoke_fire`` pipeline's ``model`` option then uses it.

Nothing is downloaded: ``YOLO_OFFLINE=1`` and ``YOLO_AUTOINSTALL=false`` are set before
Ultralytics is imported, plots are off, and the default start is ``yolov8n.yaml`` (random
weights). Start from your own ``.pt`` file with ``--model`` for a better result.

Dataset layouts accepted (``DIR``):

* ``DIR/data.yaml`` (Ultralytics dataset file; its ``names`` are the classes);
* ``DIR/images/{train,val}`` + ``DIR/labels/{train,val}``;
* ``DIR/{train,val|valid|test}/images`` + ``.../labels`` (D-Fire, Roboflow exports).

Without ``data.yaml`` the class names come from ``DIR/classes.txt`` (one per line, in label
order), else ``fire, smoke``. Check the order your dataset uses: D-Fire, for example,
documents its own class ids.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CLASSES = ["fire", "smoke"]
_VAL_NAMES = ("val", "valid", "validation", "test")


class DatasetError(ValueError):
    """The dataset folder is not in a layout we can train from."""


def _offline_env(out: Path) -> None:
    """Keep Ultralytics from reaching the network or installing packages."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(out / ".ultralytics"))
    os.environ.setdefault("MPLBACKEND", "Agg")


def _import_yolo() -> Any:
    try:
        from ultralytics import YOLO
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            f"this command needs {exc.name!r} from the train extra: pip install -e '.[train]' "
            "(torch and ultralytics; never on an edge box)"
        ) from None
    # stdout carries only the result (the manifest entry): Ultralytics' log goes to stderr
    for handler in logging.getLogger("ultralytics").handlers:
        if (
            isinstance(handler, logging.StreamHandler)
            and getattr(handler, "stream", None) is sys.stdout
        ):
            handler.setStream(sys.stderr)
    return YOLO


def _class_names(data: Path) -> list[str]:
    for name in ("classes.txt", "obj.names"):
        f = data / name
        if f.is_file():
            names = [
                line.strip() for line in f.read_text(encoding="utf-8").splitlines() if line.strip()
            ]
            if names:
                return names
    return list(DEFAULT_CLASSES)


def dataset_yaml(data: Path, out: Path) -> tuple[Path, list[str]]:
    """Find or write the Ultralytics dataset file for ``data``.

    Args:
        data: dataset folder in one of the accepted layouts.
        out: folder where a generated ``data.yaml`` is written.

    Returns:
        The dataset file and the class names, in label order.

    Raises:
        DatasetError: when no accepted layout is found (the message lists what was looked for).
    """
    data = data.resolve()
    if not data.is_dir():
        raise DatasetError(
            f"expected a dataset folder, found {'a file' if data.exists() else 'nothing'} at {data}"
        )
    given = data / "data.yaml"
    if given.is_file():
        spec = yaml.safe_load(given.read_text(encoding="utf-8")) or {}
        names = spec.get("names")
        if isinstance(names, dict):
            names = [names[k] for k in sorted(names)]
        if not names:
            raise DatasetError(f"expected 'names' in {given}, found none")
        spec.setdefault("path", str(data))
        out.mkdir(parents=True, exist_ok=True)
        target = out / "data.yaml"
        target.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
        return target, [str(n) for n in names]
    train = val = None
    if (data / "images" / "train").is_dir():
        train = "images/train"
        val = next((f"images/{v}" for v in _VAL_NAMES if (data / "images" / v).is_dir()), None)
    elif (data / "train" / "images").is_dir():
        train = "train/images"
        val = next((f"{v}/images" for v in _VAL_NAMES if (data / v / "images").is_dir()), None)
    if train is None:
        raise DatasetError(
            f"expected data.yaml, images/train + labels/train, or train/images + train/labels in {data}, found none"
        )
    names = _class_names(data)
    spec = {"path": str(data), "train": train, "val": val or train, "names": dict(enumerate(names))}
    out.mkdir(parents=True, exist_ok=True)
    target = out / "data.yaml"
    target.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target, names


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_entry(
    name: str, onnx: Path, classes: list[str], imgsz: int, licence: str
) -> dict[str, Any]:
    """The ``models/manifest.yaml`` entry for an exported model."""
    return {
        name: {
            "task": "detect",
            "format": "onnx",
            "layout": "yolov8",
            "input": {
                "name": "images",
                "size": imgsz,
                "color": "rgb",
                "scale": "1/255",
                "letterbox_pad": 114,
            },
            "classes": list(classes),
            "licence": licence,
            "files": [
                {
                    "path": onnx.name,
                    "sha256": sha256_of(onnx),
                    "bytes": onnx.stat().st_size,
                    "url": "",
                }
            ],
        }
    }


def export_onnx(weights: Path, out: Path, imgsz: int) -> Path:
    """Export Ultralytics weights to ONNX (dynamic batch, opset 13, no NMS) at ``out``."""
    _offline_env(out.parent)
    YOLO = _import_yolo()
    model = YOLO(str(weights))
    produced = Path(
        model.export(
            format="onnx", imgsz=imgsz, dynamic=True, simplify=False, opset=13, device="cpu"
        )
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if produced.resolve() != out.resolve():
        shutil.move(str(produced), out)
    return out


def _names_of(weights: Path) -> list[str]:
    YOLO = _import_yolo()
    names = YOLO(str(weights)).names
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    return [str(n) for n in names]


def _print_entry(entry: dict[str, Any], stream: Any = None) -> None:
    print("# add to models/manifest.yaml under models: (fill in url, licence)", file=sys.stderr)
    print(
        yaml.safe_dump(entry, allow_unicode=True, sort_keys=False).rstrip(),
        file=stream or sys.stdout,
        flush=True,
    )


def train_command(args: argparse.Namespace) -> int:
    """``shaobing models train fire-smoke --data DIR``: train, export ONNX, print the manifest entry.

    Returns:
        0 on success, 2 on a bad dataset or arguments, 1 when training could not be done.
    """
    data = Path(args.data)
    out = Path(args.out) if args.out else Path("runs") / args.name
    out = out.resolve()
    _offline_env(out)
    if args.epochs < 1 or args.imgsz < 32 or args.imgsz % 32:
        print(
            f"shaobing models train: expected --epochs >= 1 and --imgsz a multiple of 32, found {args.epochs}, {args.imgsz}",
            file=sys.stderr,
        )
        return 2
    try:
        data_yaml, classes = dataset_yaml(data, out)
    except DatasetError as exc:
        print(f"shaobing models train: {exc}", file=sys.stderr)
        return 2
    try:
        YOLO = _import_yolo()
    except RuntimeError as exc:
        print(f"shaobing models train: {exc}", file=sys.stderr)
        return 1
    print(
        f"training {args.model} on {data_yaml} (classes {classes}) for {args.epochs} epoch(s)",
        file=sys.stderr,
    )
    started = time.monotonic()
    with contextlib.redirect_stdout(sys.stderr):  # Ultralytics prints; stdout is the result
        model = YOLO(args.model)
        model.train(
            data=str(data_yaml),
            epochs=args.epochs,
            imgsz=args.imgsz,
            batch=getattr(args, "batch", None) or 16,
            device=getattr(args, "device", None) or "cpu",
            workers=getattr(args, "workers", None) or 0,
            project=str(out),
            name="train",
            exist_ok=True,
            plots=False,
            amp=False,
            verbose=False,
            seed=0,
            deterministic=True,
        )
        trainer = model.trainer
        best = Path(trainer.best) if trainer is not None and Path(trainer.best).is_file() else None
        if best is None and trainer is not None and Path(trainer.last).is_file():
            best = Path(trainer.last)
        if best is None:
            print("shaobing models train: training produced no weights", file=sys.stderr)
            return 1
        onnx = export_onnx(best, out / f"{args.name}.onnx", args.imgsz)
    entry = manifest_entry(
        args.name, onnx, classes, args.imgsz, licence="(your dataset's and Ultralytics' terms)"
    )
    print(
        f"trained in {time.monotonic() - started:.0f} s; weights {best}; ONNX {onnx}",
        file=sys.stderr,
    )
    _print_entry(entry)
    (out / "manifest-entry.json").write_text(
        json.dumps(entry, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return 0


def export_command(args: argparse.Namespace) -> int:
    """``shaobing models export WEIGHTS.pt [--out FILE.onnx] [--imgsz N]``: ONNX plus its manifest entry."""
    weights = Path(args.weights)
    if not weights.is_file() or weights.suffix != ".pt":
        print(
            f"shaobing models export: expected a .pt weights file, found {'nothing' if not weights.exists() else weights}",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out) if args.out else weights.with_suffix(".onnx")
    _offline_env(out.resolve().parent)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            classes = _names_of(weights)
            onnx = export_onnx(weights, out, args.imgsz)
    except RuntimeError as exc:
        print(f"shaobing models export: {exc}", file=sys.stderr)
        return 1
    _print_entry(
        manifest_entry(out.stem, onnx, classes, args.imgsz, licence="(the weights' terms)")
    )
    return 0
