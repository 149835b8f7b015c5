"""Where the project's packaged data lives (configs, model manifest, shared assets)."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """Return the folder holding ``configs/`` and ``models/``.

    ``$SHAOBING_HOME`` wins; otherwise the source checkout this package was loaded from.
    """
    env = os.environ.get("SHAOBING_HOME")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def configs_dir() -> Path:
    """Return the packaged ``configs/`` folder."""
    return project_root() / "configs"


def shared_dir() -> Path:
    """Return ``../shared`` beside the checkout (the development and CI mirror of assets)."""
    env = os.environ.get("SHAOBING_SHARED")
    if env:
        return Path(env).resolve()
    return project_root().parent / "shared"


def assets_dir() -> Path:
    """Return ``../shared/assets`` beside the checkout."""
    return shared_dir() / "assets"
