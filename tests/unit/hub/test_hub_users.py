"""hub/users.py: tokens stored hashed, roles validated against the registry, the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from hub import schema
from hub.cli import user_add_command
from hub.users import authenticate, create_user, hash_token, login
from shaobing.paths import configs_dir
from tests.conftest import HubKit


def test_tokens_are_stored_hashed(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    token = create_user(
        k.store,
        "w-tianfu-01",
        "grid_worker",
        "beibei-tianfu-01",
        registry=k.core.registry,
        password="pw-123456",
    )
    with k.store.engine.connect() as c:
        row = c.execute(select(schema.users)).one()
    assert row.token_hash == hash_token(token) and token not in (row.token_hash, row.password_hash)
    assert row.password_hash.startswith("scrypt$")
    who = authenticate(k.store, token)
    assert who is not None and who.person_id == "w-tianfu-01" and who.scope_id == "beibei-tianfu-01"
    assert authenticate(k.store, token + "x") is None
    sess = login(k.store, "w-tianfu-01", "pw-123456", ttl_h=1)
    assert sess is not None and authenticate(k.store, sess[0]) is not None
    k.clock.advance(hours=2)
    assert authenticate(k.store, sess[0]) is None  # session expired
    assert login(k.store, "w-tianfu-01", "wrong", ttl_h=1) is None


@pytest.mark.parametrize(
    ("role", "scope", "board", "message"),
    [
        ("boss", None, None, "role"),
        ("grid_worker", None, None, "scope"),
        ("grid_worker", "beibei-tianfu", None, "grid id"),
        ("board_handler", "beibei-tianfu", None, "board"),
        ("board_handler", "beibei-tianfu", "roads", "board"),
        ("viewer", "nowhere", None, "registry"),
    ],
)
def test_bad_users_are_refused(
    sqlite_hubkit: HubKit, role: str, scope: str | None, board: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        create_user(
            sqlite_hubkit.store, "x", role, scope, board, registry=sqlite_hubkit.core.registry
        )


def test_cli_user_add(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "hub.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "kind": "hub",
                "db": "sqlite:///hub.sqlite",
                "registry": str(configs_dir() / "demo" / "registry.yaml"),
            }
        )
    )
    args = argparse.Namespace(
        config=str(cfg),
        db=None,
        name="cc-tianfu",
        role="command_centre",
        scope="beibei-tianfu",
        board=None,
        password=None,
    )
    assert user_add_command(args) == 0
    token = capsys.readouterr().out.strip()
    kit = HubKit(f"sqlite:///{tmp_path / 'hub.sqlite'}", tmp_path)
    who = authenticate(kit.store, token)
    assert who is not None and who.role == "command_centre"
    assert user_add_command(args) == 2  # name taken
    assert "already taken" in capsys.readouterr().err
    kit.close()
