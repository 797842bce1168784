"""Shipping a run: thresholds calibrated on the validation split end up in the weights file."""

from __future__ import annotations

from pathlib import Path

import jax

from harmonynet_jax import inference, ship
from harmonynet_jax.config import InferenceConfig, ModelConfig
from harmonynet_jax.model import HarmonyNet
from harmonynet_jax.weights import read_header, save_weights

FIXTURE = Path(__file__).parent / "data" / "fixture_maestro"


def test_ship_writes_calibrated_fp16_weights(tmp_path):
    model = HarmonyNet(ModelConfig.preset("tiny"), key=jax.random.key(3))
    run = save_weights(tmp_path / "run.eqx", model, "float32")
    out = tmp_path / "shipped.eqx"
    ship.main(["--run", str(run), "--data", str(FIXTURE), "--limit", "1", "--out", str(out)])
    header = read_header(out)
    assert header["dtype"] == "float16"
    info = header["info"]
    assert info["decoder"] == "frames"
    assert info["onset_threshold"] in ship.ONSET_GRID
    assert info["frame_threshold"] in ship.FRAME_GRID
    assert info["min_note_frames"] in ship.MIN_FRAMES_GRID
    assert info["calibrated_on"].endswith("validation (1 pieces)")
    assert info["frame_margin_s"] == InferenceConfig().frame_margin_s
    tuned = inference.tuned_config(out, InferenceConfig(frame_margin_s=0.0))
    assert (tuned.decoder, tuned.onset_threshold) == ("frames", info["onset_threshold"])
    assert tuned.min_note_frames == info["min_note_frames"]
    assert tuned.frame_margin_s == info["frame_margin_s"]  # inference tiles as calibrated
    assert out.stat().st_size < run.stat().st_size * 0.6
