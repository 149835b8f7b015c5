"""The hub's administration commands: ``shaobing hub user add|token|revoke|disable|enable``
and ``shaobing hub reports export`` (the parser lives in :mod:`shaobing.cli`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hub.labelled import export_labelled
from hub.registry import load_registry
from hub.serve import apply_overrides
from hub.store import Store
from hub.users import create_user, disable_user, issue_token, revoke_user
from shaobing.config import ConfigError, HubConfig, load_hub_config

__all__ = ["user_add_command", "user_admin_command", "export_command"]


def _config(args: argparse.Namespace) -> HubConfig:
    """The hub config of ``-c`` with ``--db`` applied (ConfigError when it is wrong)."""
    return apply_overrides(load_hub_config(args.config), getattr(args, "db", None), None, None)


def _refused(exc: ConfigError) -> int:
    """Print what is wrong with the config; the exit status of a bad config."""
    for issue in exc.issues:
        print(str(issue), file=sys.stderr)
    return 2


def user_add_command(args: argparse.Namespace) -> int:
    """``shaobing hub user add NAME --role R [--scope ID] [--board B] [--password P] -c HUB.yaml [--db URL]``."""
    try:
        cfg = _config(args)
        registry = load_registry(cfg.resolve(cfg.registry)) if cfg.registry else None
    except ConfigError as exc:
        return _refused(exc)
    store = Store(cfg.db_url())
    try:
        store.migrate()
        token = create_user(
            store, args.name, args.role, args.scope, args.board, args.password, registry
        )
    except ValueError as exc:
        print(f"shaobing hub user add: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(token)
    print(
        f"user {args.name!r} ({args.role}) added; the line above is its bearer token (shown once)",
        file=sys.stderr,
    )
    return 0


def user_admin_command(args: argparse.Namespace) -> int:
    """``shaobing hub user token|revoke|disable|enable NAME -c HUB.yaml [--db URL]``."""
    try:
        cfg = _config(args)
    except ConfigError as exc:
        return _refused(exc)
    store = Store(cfg.db_url())
    action = args.user_command
    try:
        store.migrate()
        if action == "token":
            print(issue_token(store, args.name))
            print(f"user {args.name!r}: new bearer token above (shown once); the old one no longer works", file=sys.stderr)  # fmt: skip
        elif action == "revoke":
            revoke_user(store, args.name)
            print(f"user {args.name!r}: sessions ended and bearer token voided", file=sys.stderr)
        else:
            disable_user(store, args.name, disabled=action == "disable")
            print(f"user {args.name!r}: {action}d", file=sys.stderr)
    except ValueError as exc:
        print(f"shaobing hub user {action}: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0


def export_command(args: argparse.Namespace) -> int:
    """``shaobing hub reports export --labelled FILE.tsv -c HUB.yaml [--db URL]``."""
    try:
        cfg = _config(args)
    except ConfigError as exc:
        return _refused(exc)
    store = Store(cfg.db_url())
    try:
        store.migrate()
        n = export_labelled(store, Path(args.labelled))
    except OSError as exc:
        sys.stderr.write(f"shaobing hub reports export: {exc}\n")
        return 2
    finally:
        store.close()
    sys.stderr.write(f"{n} labelled reports written to {args.labelled}\n")
    return 0
