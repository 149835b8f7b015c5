"""The ``shaobing`` command (ARCHITECTURE §8).

Subcommands are mounted here; their implementations are imported lazily inside each
handler so that ``shaobing --help`` and the light commands start fast, and so that the
hub never imports the edge's heavy libraries.

Exit status: 0 when the work was done, 2 on bad usage or config, 1 when it could not be done.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from shaobing import __version__

Handler = Callable[[argparse.Namespace], int]


def _lazy(target: str) -> Handler:
    """A handler that imports ``module:function`` only when the command runs."""

    def run(args: argparse.Namespace) -> int:
        module_name, func_name = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or module_name
            print(
                f"shaobing: this command needs {missing!r}, which is not installed "
                f"(install the matching extra, e.g. pip install -e '.[edge,hub,voice,broker]')",
                file=sys.stderr,
            )
            return 1
        func: Handler = getattr(module, func_name)
        return func(args)

    return run


def _config_checks(kind: str) -> tuple[Any, dict[str, Any], list[Any]]:
    """What checking a config of ``kind`` needs beyond the schema (imported only then).

    Raises ImportError when the extra that holds those checks is not installed: a check is
    never silently skipped.
    """
    if kind == "edge":
        from pipelines.registry import options_models
        from pipelines.sensor_rules import threshold_issues

        return options_models(), {}, [lambda cfg: threshold_issues(cfg.sensors)]
    if kind in ("hub", "registry"):
        from hub.registry import validate_registry_file
        from hub.serve import check_hub_file

        return None, {"registry": validate_registry_file, "hub": check_hub_file}, []
    return None, {}, []


_EXTRA_OF_KIND = {"edge": "edge", "hub": "hub", "registry": "hub"}


def _config_validate(args: argparse.Namespace) -> int:
    from shaobing.config import ConfigError, detect_kind, validate_file

    status = 0
    for path in args.files:
        try:
            kind = detect_kind(path)
            try:
                pipeline_options, extra, edge_checks = _config_checks(kind)
            except ImportError as exc:
                need = _EXTRA_OF_KIND.get(kind, "all")
                print(
                    f"{path}: checking a {kind} config needs the {need} extra, found it missing "
                    f"({exc}); install it: pip install 'shaobing[{need}]'",
                    file=sys.stderr,
                )
                status = 2
                continue
            kind = validate_file(path, pipeline_options, extra, edge_checks)
        except ConfigError as exc:
            for issue in exc.issues:
                print(str(issue), file=sys.stderr)
            status = 2
        else:
            print(f"{path}: valid {kind} config", file=sys.stderr)
    return status


def _models_list(args: argparse.Namespace) -> int:
    import json

    from shaobing.models import list_models

    rows = list_models()
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        for row in rows:
            print(
                f"{row['name']:<16} {row['task']:<8} {row['path'] or '(not found: shaobing models fetch ' + row['name'] + ')'}"
            )
    return 0


def _models_fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shaobing.models import ModelNotFound, fetch_model

    try:
        path = fetch_model(args.name, Path(args.dest) if args.dest else None)
    except (ModelNotFound, ValueError, OSError) as exc:
        print(f"shaobing models fetch: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``add_subparsers`` returns: each helper below adds one command group to it."""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="shaobing",
        description="哨兵 Shaobing: edge AI and command-centre hub for grid governance",
    )
    parser.add_argument("--version", action="version", version=f"shaobing {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (
        _add_demo,
        _add_edge,
        _add_hub,
        _add_broker,
        _add_detect,
        _add_report,
        _add_models,
        _add_config,
        _add_bench,
        _add_loadgen,
    ):
        add(sub)
    return parser


def _add_demo(sub: Commands) -> None:
    """``shaobing demo``."""
    p = sub.add_parser("demo", help="embedded broker + hub + edge node replaying demo inputs")
    p.add_argument(
        "--duration", type=float, default=None, help="stop after S seconds (default: until Ctrl-C)"
    )
    p.add_argument(
        "--http", default="127.0.0.1:8080", help="HOST:PORT of the hub's dashboard and API"
    )
    p.add_argument(
        "--workdir",
        default=None,
        help="folder for the demo's databases (default: a temporary folder)",
    )
    p.set_defaults(func=_lazy("shaobing.demo:demo_command"))


def _add_edge(sub: Commands) -> None:
    """``shaobing edge run``."""
    edge = sub.add_parser("edge", help="edge node").add_subparsers(
        dest="edge_command", metavar="SUBCOMMAND"
    )
    p = edge.add_parser("run", help="run an edge node")
    p.add_argument("-c", "--config", required=True, help="edge config YAML")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.set_defaults(func=_lazy("edge.node:run_command"))


def _add_hub(sub: Commands) -> None:
    """``shaobing hub serve|user|node-key|worker-token|reports``."""
    hub = sub.add_parser("hub", help="hub server").add_subparsers(
        dest="hub_command", metavar="SUBCOMMAND"
    )
    p = hub.add_parser("serve", help="run the hub (ingest + API + dashboard)")
    _hub_config(p)
    p.add_argument("--broker", default=None, help="broker URL (overrides the config)")
    p.add_argument("--http", default=None, help="HOST:PORT (overrides the config)")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.set_defaults(func=_lazy("hub.serve:serve_command"))
    _add_hub_users(hub)
    _add_hub_keys(hub)
    _add_hub_reports(hub)


def _add_broker(sub: Commands) -> None:
    """``shaobing broker``."""
    p = sub.add_parser("broker", help="embedded MQTT broker for demos and tests")
    p.add_argument("--port", type=int, default=1883, help="TCP port (default 1883)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.set_defaults(func=_lazy("shaobing.broker:broker_command"))


def _add_detect(sub: Commands) -> None:
    """``shaobing detect``."""
    p = sub.add_parser("detect", help="offline: the events of one video as JSON lines")
    p.add_argument("video", help="video file")
    p.add_argument(
        "-c", "--config", default=None, help="edge config YAML (default: the packaged demo config)"
    )
    p.add_argument("--camera", default=None, help="camera id in the config (default: the first)")
    p.add_argument(
        "--start", default=None, help="ISO time of the first frame (default: the file's mtime)"
    )
    p.add_argument("--json", action="store_true", help="one Event JSON per line on stdout")
    p.add_argument("--no-evidence", action="store_true", help="do not write evidence files")
    p.set_defaults(func=_lazy("edge.detect:detect_command"))


def _add_report(sub: Commands) -> None:
    """``shaobing report transcribe|extract|eval``."""
    report = sub.add_parser("report", help="voice and text reports").add_subparsers(
        dest="report_command", metavar="SUBCOMMAND"
    )
    p = report.add_parser("transcribe", help="speech → text")
    p.add_argument("audio", nargs="+", help="audio files")
    p.add_argument("-c", "--config", default=None, help="edge config YAML")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.add_argument("--model", default=None, help="model name or folder (default: whisper-base)")
    p.set_defaults(func=_lazy("edge.reports.cli:transcribe_command"))
    p = report.add_parser("extract", help="text → structured event fields")
    p.add_argument("text", help="the report text, or - to read one report per line from stdin")
    p.add_argument("-c", "--config", default=None, help="edge config YAML")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=_lazy("edge.reports.cli:extract_command"))
    p = report.add_parser("eval", help="score extraction on a TSV")
    p.add_argument("tsv", help="TSV with text (or file), types, location, severities")
    p.add_argument("-c", "--config", default=None, help="edge config YAML")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument(
        "--audio", action="store_true", help="the TSV names audio files: transcribe first"
    )
    p.set_defaults(func=_lazy("edge.reports.cli:eval_command"))


def _add_models(sub: Commands) -> None:
    """``shaobing models list|fetch|export|train``."""
    models = sub.add_parser("models", help="model artefacts").add_subparsers(
        dest="models_command", metavar="SUBCOMMAND"
    )
    p = models.add_parser("list", help="manifest entries and where each resolves")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_models_list)
    p = models.add_parser("fetch", help="download a model into the cache, checking sha256")
    p.add_argument("name")
    p.add_argument("--dest", default=None, help="target folder (default: ~/.cache/shaobing/models)")
    p.set_defaults(func=_models_fetch)
    p = models.add_parser("export", help="export a trained model to ONNX (train extra)")
    p.add_argument("weights", help="a .pt file")
    p.add_argument("--out", default=None, help="output .onnx path")
    p.add_argument("--imgsz", type=int, default=640)
    p.set_defaults(func=_lazy("shaobing_tools.train:export_command"))
    p = models.add_parser("train", help="train a model (train extra)")
    p.add_argument("task", choices=["fire-smoke"], help="what to train")
    p.add_argument("--data", required=True, help="dataset folder in YOLO layout")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--model", default="yolov8n.yaml", help="starting model (yaml = from scratch)")
    p.add_argument("--out", default=None, help="output folder")
    p.add_argument("--name", default="fire_smoke", help="manifest name of the result")
    p.set_defaults(func=_lazy("shaobing_tools.train:train_command"))
    p = models.add_parser(
        "quantize", help="a static INT8 copy of a detector, checked for recall against FP32"
    )
    p.add_argument("name", help="manifest name of an ONNX detector (e.g. yolov5n)")
    p.add_argument(
        "--dest", default=None, help="the deployment's models folder (default: $SHAOBING_MODELS)"
    )
    p.add_argument(
        "--format",
        choices=["auto", "qdq", "qoperator"],
        default="auto",
        help="auto: quantize both, keep the faster here",
    )
    p.add_argument("--calibration-frames", type=int, default=8, help="frames per shared video")
    p.add_argument("--recall-frames", type=int, default=120, help="frames per recall clip")
    p.add_argument("--no-default", action="store_true", help="never make it the default for NAME")
    p.add_argument("--json", action="store_true", help="the manifest entry as JSON")
    p.set_defaults(func=_lazy("shaobing_tools.quantize:quantize_command"))


def _add_config(sub: Commands) -> None:
    """``shaobing config validate``."""
    config = sub.add_parser("config", help="configuration").add_subparsers(
        dest="config_command", metavar="SUBCOMMAND"
    )
    p = config.add_parser("validate", help="check config files; errors as FILE:LINE key.path: …")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_config_validate)


def _add_bench(sub: Commands) -> None:
    """``shaobing bench edge|hub|asr``."""
    bench = sub.add_parser(
        "bench", help="benchmarks, side by side with the baseline"
    ).add_subparsers(dest="bench_command", metavar="WHAT")
    p = bench.add_parser("edge", help="N camera streams through the engine vs. the naive loop")
    p.add_argument("--streams", type=int, default=16)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-ultralytics", action="store_true", help="skip the Ultralytics baseline")
    p.set_defaults(func=_lazy("shaobing_tools.bench_edge:bench_edge_command"))
    p = bench.add_parser("hub", help="end-to-end transport + ingest vs. the naive design")
    p.add_argument("--json", action="store_true")
    p.add_argument("--events", type=int, default=20000)
    p.add_argument("--rate", type=float, default=200.0, help="fixed rate for the latency run")
    p.set_defaults(func=_lazy("shaobing_tools.bench_hub:bench_hub_command"))
    p = bench.add_parser("asr", help="speech recognition speed and accuracy")
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=_lazy("shaobing_tools.bench_asr:bench_asr_command"))


def _add_loadgen(sub: Commands) -> None:
    """``shaobing loadgen``."""
    p = sub.add_parser(
        "loadgen", help="synthetic edge traffic through the real outbox and publisher"
    )
    p.add_argument("--broker", required=True, help="broker URL")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--rate", type=float, default=100.0, help="events/s over all nodes")
    p.add_argument("--count", type=int, default=1000, help="events over all nodes")
    p.add_argument(
        "--outbox", default=None, help="folder for the nodes' outboxes (default: temporary)"
    )
    p.add_argument(
        "--timeout", type=float, default=120.0, help="give up waiting for acks after S seconds"
    )
    p.add_argument("--username", default=None)
    p.add_argument("--password", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_lazy("shaobing_tools.loadgen:loadgen_command"))


def _hub_config(p: argparse.ArgumentParser, *, db: bool = True) -> None:
    """The hub config file (and the database URL overriding it) of a hub command."""
    p.add_argument("-c", "--config", required=True, help="hub config YAML")
    if db:
        p.add_argument("--db", default=None, help="database URL (overrides the config)")


def _add_hub_users(hub: Commands) -> None:
    """``shaobing hub user add|token|revoke|disable|enable``."""
    users = hub.add_parser("user", help="manage users").add_subparsers(
        dest="user_command", metavar="ACTION"
    )
    pu = users.add_parser("add", help="add a user and print a bearer token")
    _hub_config(pu)
    pu.add_argument("name", help="login name")
    pu.add_argument(
        "--role",
        required=True,
        choices=["admin", "command_centre", "board_handler", "grid_worker", "viewer"],
    )
    pu.add_argument(
        "--scope", default=None, help="district/town/community/grid id the role is limited to"
    )
    pu.add_argument("--board", default=None, help="board code (board handlers)")
    pu.add_argument(
        "--password", default=None, help="password for the web login (default: token only)"
    )
    pu.set_defaults(func=_lazy("hub.cli:user_add_command"))
    for action, text in (
        ("token", "issue a new bearer token (the old one stops working) and print it"),
        ("revoke", "end a user's sessions and void its bearer token"),
        ("disable", "disable a user (token and sessions stop working)"),
        ("enable", "enable a disabled user"),
    ):
        pa = users.add_parser(action, help=text)
        _hub_config(pa)
        pa.add_argument("name", help="login name")
        pa.set_defaults(func=_lazy("hub.cli:user_admin_command"))


def _add_hub_keys(hub: Commands) -> None:
    """``shaobing hub node-key|worker-token``."""
    pk = hub.add_parser(
        "node-key", help="print a node's ack key (derived from ingest.ack_secret) for its config"
    )
    _hub_config(pk, db=False)
    pk.add_argument("node", help="node id")
    pk.set_defaults(func=_lazy("hub.serve:node_key_command"))
    pw = hub.add_parser(
        "worker-token", help="print a grid worker's report token for one node (signed, expiring)"
    )
    _hub_config(pw, db=False)
    pw.add_argument("worker", help="worker id (a registry person id)")
    pw.add_argument("--node", required=True, help="the edge node the worker reports through")
    pw.add_argument("--grid", default=None, help="grid id (default: the worker's grid)")
    pw.add_argument("--days", type=float, default=30.0, help="days until it expires (30)")
    pw.set_defaults(func=_lazy("hub.serve:worker_token_command"))


def _add_hub_reports(hub: Commands) -> None:
    """``shaobing hub reports export``."""
    hub_reports = hub.add_parser("reports", help="worker reports").add_subparsers(
        dest="reports_command", metavar="ACTION"
    )
    pr = hub_reports.add_parser("export", help="export worker-confirmed reports")
    _hub_config(pr)
    pr.add_argument(
        "--labelled",
        required=True,
        metavar="FILE.tsv",
        help="write the labelled examples here (report TSV: text, types, location, severities …)",
    )
    pr.set_defaults(func=_lazy("hub.cli:export_command"))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``shaobing`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not hasattr(args, "func"):
        # a group without its subcommand: show that group's help
        parser.parse_args([*(argv or sys.argv[1:]), "--help"])
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
