"""Fixtures of the browser tests: one real system per module and one headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.kit import Stack, launch, skip_reason

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless (skips with the reason when it or Playwright is missing)."""
    why = skip_reason()
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()


@pytest.fixture(scope="module")
def stack(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Mosquitto + ``hub serve`` + users, shared by a module's tests."""
    s = Stack(tmp_path_factory.mktemp("browser-stack"))
    yield s
    s.close()
