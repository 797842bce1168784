"""HarmonyNet-JAX: solo-piano transcription (audio to MIDI, MusicXML and PDF)."""

__version__ = "0.1.0"
