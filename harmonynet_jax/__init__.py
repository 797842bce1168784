"""HarmonyNet-JAX: solo-piano transcription (audio to MIDI, MusicXML and PDF).

    import harmonynet_jax
    result = harmonynet_jax.transcribe("song.mp3", checkpoint="model.eqx")
    result.to_midi("song.mid")

The API is imported on first use, so `import harmonynet_jax` stays cheap (no JAX).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Transcription", "load_model", "transcribe"]

if TYPE_CHECKING:
    from harmonynet_jax.inference import load_model, transcribe
    from harmonynet_jax.transcription import Transcription

_LAZY = {"transcribe": "inference", "load_model": "inference", "Transcription": "transcription"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"harmonynet_jax.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'harmonynet_jax' has no attribute {name!r}")
