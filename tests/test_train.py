"""Training: phase masks, multi-device equivalence, exact resume after kill -9, bad input."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

from harmonynet_jax.config import ModelConfig, TrainConfig
from harmonynet_jax.data import Stream
from harmonynet_jax.model import HarmonyNet
from harmonynet_jax.train.loop import TrainingError, make_step, train
from harmonynet_jax.train.phases import make_optimizer, params_of

ROOT = Path(__file__).parent.parent
FIXTURE = ROOT / "tests" / "data" / "fixture_maestro"
CFG = TrainConfig.preset("test")
MODEL = ModelConfig.preset(CFG.model)
STEPS = 8
CLI_ARGS = ["--config", "test", "--steps", str(STEPS), "--checkpoint-every", "2",
            "--log-every", "1", "--eval-every", "0", "--no-progress"]


def leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))]


def bitwise_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b), strict=True))


@pytest.fixture(scope="module")
def real_batch(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    with Stream(FIXTURE, "train", MODEL.segment_samples, CFG.batch_size, 0,
                max_tokens=CFG.max_tokens, frame_hop=MODEL.frontend.hop,
                cache_dir=cache) as stream:
        return {k: v for k, v in next(stream).items() if isinstance(v, np.ndarray)}


@pytest.mark.parametrize("phase,changes", [
    ("0", {"encoder", "frame_head"}),
    ("A", {"decoder"}),
    ("B", {"encoder", "frame_head", "decoder"}),
])
def test_phase_masks_freeze_exactly_what_they_should(phase, changes, real_batch):
    cfg = dataclasses.replace(CFG, phase=phase)
    model = HarmonyNet(MODEL, key=jax.random.key(1))
    optimizer = make_optimizer(cfg, model)
    opt_state = optimizer.init(params_of(model))
    step = make_step(optimizer, cfg)
    new, new_state = model, opt_state
    for i in range(2):
        new, new_state, metrics = step(new, new_state, real_batch, jax.random.key(i))
        assert np.isfinite(float(metrics["loss"]))
    for part in ("encoder", "frame_head", "decoder"):
        same = bitwise_equal(getattr(model, part), getattr(new, part))
        assert same == (part not in changes), f"phase {phase}: {part} changed={not same}"
    # Frozen parts keep no optimiser state at all.
    inner = new_state[1].inner_states
    for part in ("frontend", "encoder", "frame_head", "decoder"):
        has_state = len(jax.tree.leaves(inner[part])) > 0
        assert has_state == (part in changes), f"phase {phase}: {part} state={has_state}"


def run_cli(run_dir: Path, *extra: str, devices: int = 1, wait: bool = True, phase: str = "0"):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "HARMONYNET_CACHE": str(run_dir.parent / "cache"), "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, str(ROOT / "train.py"), "--data", str(FIXTURE), "--phase", phase,
           "--run-dir", str(run_dir), *CLI_ARGS, *extra]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def losses(run_dir: Path) -> dict[int, float]:
    """Train loss per step; a resumed run's later line for a step wins."""
    out = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["split"] == "train":
            out[row["step"]] = row["loss"]
    return out


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> dict[int, float]:
    run = tmp_path_factory.mktemp("ref") / "run"
    run_cli(run, phase="B")
    got = losses(run)
    assert sorted(got) == list(range(1, STEPS + 1))
    return got


@pytest.mark.parametrize("devices,fsdp", [(4, 1), (4, 2)])
def test_multi_device_training_equals_single_device(tmp_path, reference_run, devices, fsdp):
    run = tmp_path / "run"
    run_cli(run, "--fsdp", str(fsdp), devices=devices, phase="B")
    got = losses(run)
    for step, want in reference_run.items():
        assert abs(got[step] - want) <= 1e-5 * abs(want), (step, got[step], want)


def test_kill_9_then_resume_continues_exactly(tmp_path, reference_run):
    run = tmp_path / "run"
    proc = run_cli(run, wait=False, phase="B")
    deadline = time.time() + 300
    while not (run / "checkpoints" / "4").is_dir():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline, "no checkpoint 4 in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_cli(run, phase="B")
    got = losses(run)
    assert sorted(got) == list(range(1, STEPS + 1))
    for step, want in reference_run.items():
        assert got[step] == pytest.approx(want, rel=1e-6), step


def test_errors_are_clear(tmp_path):
    empty = tmp_path / "empty"
    shutil.copytree(FIXTURE, empty)
    (empty / "maestro-v3.0.0.json").unlink()
    csv = (empty / "maestro-v3.0.0.csv").read_text().splitlines()
    (empty / "maestro-v3.0.0.csv").write_text("\n".join(
        [csv[0]] + [r.replace(",train,", ",test,") for r in csv[1:]]) + "\n")
    cfg = dataclasses.replace(CFG, steps=2, eval_every=0)
    with pytest.raises(TrainingError, match="no usable pieces"):
        train(cfg, empty, tmp_path / "r1", progress=False)

    run = tmp_path / "r2"
    train(cfg, FIXTURE, run, progress=False)
    other = dataclasses.replace(MODEL, d_model=32)
    with pytest.raises(TrainingError, match="another model config"):
        train(dataclasses.replace(cfg, steps=4), FIXTURE, run, model_config=other,
              progress=False)
    with pytest.raises(TrainingError, match="phase"):
        train(dataclasses.replace(cfg, phase="A", steps=4), FIXTURE, run, progress=False)


def test_full_disk_keeps_the_last_good_checkpoint(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2500k", "tmpfs", str(mount)],
                        capture_output=True)
    if ok.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        run = mount / "run"
        env = {**os.environ, "HARMONYNET_CACHE": str(tmp_path / "cache")}
        cmd = [sys.executable, str(ROOT / "train.py"), "--data", str(FIXTURE), "--phase", "0",
               "--run-dir", str(run), *CLI_ARGS]
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 2
        assert "could not write the checkpoint" in result.stderr
        assert "last good checkpoint (step 2) is intact" in result.stderr
        assert "Traceback" not in result.stderr
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["2"]
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_onset_positive_weight_scales_only_positive_onset_cells():
    import jax.numpy as jnp
    import optax

    from harmonynet_jax.train.losses import frame_loss

    rng = np.random.default_rng(0)
    shape = (2, 5, 88)
    logits = {k: jnp.asarray(rng.normal(size=shape), jnp.float32)
              for k in ("onset", "frame", "offset", "velocity")}
    batch = {k: jnp.asarray(rng.random(shape) < 0.1, jnp.float32)
             for k in ("onset", "frame", "offset")}
    batch["velocity"] = batch["onset"] * 0.5
    _, plain = frame_loss(logits, batch)
    want = optax.sigmoid_binary_cross_entropy(logits["onset"], batch["onset"]).mean()
    assert float(plain["onset_loss"]) == pytest.approx(float(want), rel=1e-6)
    _, weighted = frame_loss(logits, batch, onset_pos_weight=4.0)
    pos = batch["onset"] * jax.nn.softplus(-logits["onset"])
    assert float(weighted["onset_loss"]) == pytest.approx(
        float(want + 3.0 * pos.mean()), rel=1e-5)
    assert float(weighted["frame_loss"]) == pytest.approx(float(plain["frame_loss"]))


def test_sigterm_saves_the_step_reached_and_resume_is_exact(tmp_path, reference_run):
    """A preempted run (SIGTERM, as pod schedulers send) checkpoints the step it reached, exits
    143 without a traceback, and the rerun continues exactly."""
    run = tmp_path / "run"
    proc = run_cli(run, "--checkpoint-every", "100", wait=False, phase="B")
    deadline = time.time() + 300
    while not (run / "metrics.jsonl").is_file() or len(losses(run)) < 3:
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline, "no third step in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 143, out
    assert "Traceback" not in out and "interrupted: saving step" in out, out
    saved = max(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    assert 3 <= saved < STEPS
    run_cli(run, phase="B")
    got = losses(run)
    for step, want in reference_run.items():
        assert got[step] == pytest.approx(want, rel=1e-6), step


def test_warm_start_moves_weights_to_a_new_front_end_and_refuses_other_shapes(tmp_path):
    from harmonynet_jax.train.loop import warm_start
    from harmonynet_jax.weights import save_weights

    donor = HarmonyNet(MODEL, key=jax.random.key(7))
    path = save_weights(tmp_path / "donor.eqx", donor, "float32")
    wider_fft = dataclasses.replace(MODEL, frontend=dataclasses.replace(MODEL.frontend,
                                                                        n_fft=2048))
    fresh = HarmonyNet(wider_fft, key=jax.random.key(0))
    moved = warm_start(fresh, path)
    assert moved.config == wider_fft  # the new front end is kept ...
    assert bitwise_equal(moved, donor)  # ... with every parameter of the donor
    assert not bitwise_equal(fresh, donor)
    with pytest.raises(TrainingError, match="other shapes"):
        warm_start(HarmonyNet(dataclasses.replace(MODEL, d_model=32), key=jax.random.key(0)),
                   path)
    with pytest.raises(TrainingError, match="not found"):
        warm_start(fresh, tmp_path / "missing.eqx")
