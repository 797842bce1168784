"""Where the project caches things per user: $HARMONYNET_CACHE, else $XDG_CACHE_HOME/harmonynet,
else ~/.cache/harmonynet; one sub-folder per kind (audio, corpus, fonts, jax)."""

from __future__ import annotations

import contextlib
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


def enable_jax_compile_cache() -> None:
    """Compiled model functions persist between runs and processes ($HARMONYNET_JAX_CACHE;
    'off' disables), so a second `transcribe` or a restarted service worker skips most of the
    JIT time."""
    where = os.environ.get("HARMONYNET_JAX_CACHE")
    if where == "off":
        return
    import jax

    with contextlib.suppress(Exception):  # a read-only home must not stop transcription
        jax.config.update("jax_compilation_cache_dir", where or str(cache_dir("jax")))
