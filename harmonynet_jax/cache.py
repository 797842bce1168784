"""Where the project caches things per user: $HARMONYNET_CACHE, else $XDG_CACHE_HOME/harmonynet,
else ~/.cache/harmonynet; one sub-folder per kind (audio, corpus, fonts, jax)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    explicit = os.environ.get("HARMONYNET_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "harmonynet"


def cache_dir(kind: str) -> Path:
    return cache_root() / kind
