"""The README's main job: the bundled model transcribes the bundled example to MIDI, MusicXML,
PDF and JSON, with the accuracy docs/model.md states for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pretty_midi
from pypdf import PdfReader

from harmonynet_jax.evaluate import note_scores, read_reference, sustained
from harmonynet_jax.tokens import Note

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "mozart_k545_rendered.mp3"


def test_bundled_model_transcribes_the_example(tmp_path):
    assert (ROOT / "models" / "harmonynet.eqx").is_file()
    env = {k: v for k, v in os.environ.items() if k != "HARMONYNET_MODEL"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "transcribe.py"), str(EXAMPLE), "--format",
         "midi,musicxml,pdf,json", "--out-dir", str(tmp_path), "--no-progress"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    stem = tmp_path / EXAMPLE.stem
    doc = json.loads(stem.with_suffix(".json").read_text())
    assert doc["decoder"] == "frames"  # what the shipped weights recommend
    estimate = [Note(n["onset"], n["offset"], n["pitch"], n["velocity"]) for n in doc["notes"]]
    midi = pretty_midi.PrettyMIDI(str(stem.with_suffix(".mid")))
    assert sum(len(i.notes) for i in midi.instruments) == len(estimate) > 100
    assert len(PdfReader(str(stem.with_suffix(".pdf"))).pages) >= 1
    assert "<score-partwise" in stem.with_suffix(".musicxml").read_text()
    ref, pedals = read_reference(EXAMPLE.with_suffix(".mid"))
    scores = note_scores(sustained(ref, pedals), estimate)
    assert scores["onset_f1"] >= 0.85, scores  # measured 0.884 (docs/model.md)
