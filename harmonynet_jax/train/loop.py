"""The training loop shared by all phases: build or resume the state, stream sharded batches,
step, log, validate, checkpoint. Effects live here; the step itself is a pure jitted function."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from harmonynet_jax import tokens as T
from harmonynet_jax.config import ModelConfig, TrainConfig
from harmonynet_jax.data import LoaderError, Stream
from harmonynet_jax.decoding import greedy_decode
from harmonynet_jax.evaluate import note_scores
from harmonynet_jax.frames import frames_to_notes
from harmonynet_jax.model import HarmonyNet
from harmonynet_jax.train import sharding
from harmonynet_jax.train.checkpoint import Checkpointer, CheckpointError, config_dict
from harmonynet_jax.train.losses import phase_loss
from harmonynet_jax.train.metrics import MetricsLog
from harmonynet_jax.train.phases import check_phase, make_optimizer, params_of, schedule
from harmonynet_jax.weights import WeightsError, load_weights

log = logging.getLogger(__name__)


class Stopped(KeyboardInterrupt):
    """The run stopped on request (SIGTERM / Ctrl-C) after checkpointing the step it reached."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_stop_requests: list[int] = []


def request_stop(signum: int, frame: Any = None) -> None:
    """Signal handler: the loop stops at the next step boundary, where model, optimiser state
    and loader position agree, and saves there. A second request interrupts at once (the last
    checkpoint then holds the progress)."""
    if _stop_requests:
        raise KeyboardInterrupt
    _stop_requests.append(signum)


class TrainingError(RuntimeError):
    """A problem the user can fix (data, checkpoint, configuration): printed, not traced."""


@dataclass
class TrainState:
    model: HarmonyNet
    opt_state: Any
    rng: jax.Array
    step: int
    loader_position: int


def make_step(optimizer: optax.GradientTransformation, cfg: TrainConfig) -> Callable:
    loss_kw = dict(phase=cfg.phase, label_smoothing=cfg.label_smoothing,
                   frame_loss_weight=cfg.frame_loss_weight, onset_weight=cfg.onset_weight,
                   onset_pos_weight=cfg.onset_pos_weight)

    @eqx.filter_jit
    def step(model, opt_state, batch, key):
        (_, metrics), grads = eqx.filter_value_and_grad(phase_loss, has_aux=True)(
            model, batch, key, **loss_kw
        )
        updates, opt_state = optimizer.update(grads, opt_state, params_of(model))
        metrics["grad_norm"] = optax.tree.norm(grads)
        return eqx.apply_updates(model, updates), opt_state, metrics

    return step


def make_eval(cfg: TrainConfig) -> Callable:
    loss_kw = dict(phase=cfg.phase, label_smoothing=0.0,
                   frame_loss_weight=cfg.frame_loss_weight, onset_weight=cfg.onset_weight,
                   onset_pos_weight=cfg.onset_pos_weight)

    @eqx.filter_jit
    def evaluate(model, batch):
        _, metrics = phase_loss(model, batch, None, **loss_kw)
        memory = model.encode(batch["audio"])
        frames = {k: jax.nn.sigmoid(v) for k, v in model.frame_logits(memory).items()}
        tokens = greedy_decode(model, memory) if cfg.phase != "0" else None
        return metrics, frames, tokens

    return evaluate


def _notes_of_segments(per_segment: list[list[T.Note]], seconds: float) -> list[T.Note]:
    """Segments laid end to end with a gap, so one mir_eval call scores them all."""
    out = []
    for k, notes in enumerate(per_segment):
        shift = k * (seconds + 10.0)
        out += [T.Note(n.onset + shift, n.offset + shift, n.pitch, n.velocity) for n in notes]
    return out


def validation_scores(cfg: TrainConfig, model: HarmonyNet, batches: list[dict],
                      evaluate: Callable) -> dict[str, float]:
    seconds = model.config.segment_samples / T.VOCAB.sample_rate
    steps = model.config.segment_samples // T.VOCAB.samples_per_step
    hop_s = model.config.frontend.hop / T.VOCAB.sample_rate
    sums: dict[str, float] = {}
    refs, frame_est, token_est, sounding_refs = [], [], [], []
    for batch in batches:
        metrics, frames, tokens = evaluate(model, batch)
        for k, v in metrics.items():
            sums[k] = sums.get(k, 0.0) + float(v) / len(batches)
        frames = {k: np.asarray(v) for k, v in frames.items()}
        for row in range(batch["audio"].shape[0]):
            ref_notes, _ = T.decode(np.asarray(batch["tokens"][row]), steps)
            refs.append([n for n in ref_notes if n.onset > 0 or row_starts_piece(batch, row)])
            frame_est.append(frames_to_notes(frames["onset"][row], frames["frame"][row],
                                             frames["velocity"][row], hop_s))
            sounding_refs.append(_frame_reference(np.asarray(batch["onset"][row]), hop_s))
            if tokens is not None:
                est, _ = T.decode(np.asarray(tokens[row]), steps)
                token_est.append([n for n in est if n.onset > 0 or row_starts_piece(batch, row)])
    frame_f1 = note_scores(_notes_of_segments(sounding_refs, seconds),
                           _notes_of_segments(frame_est, seconds))["onset_f1"]
    sums["frame_decoder_onset_f1"] = frame_f1
    if token_est:
        sums["token_decoder_onset_f1"] = note_scores(
            _notes_of_segments(refs, seconds), _notes_of_segments(token_est, seconds)
        )["onset_f1"]
    return sums


def row_starts_piece(batch: dict, row: int) -> bool:
    return int(np.asarray(batch["start_sample"])[row]) == 0


def _frame_reference(onset: np.ndarray, hop_s: float) -> list[T.Note]:
    """Onsets of the frame targets as notes (onset F1 only looks at onsets and pitches)."""
    frames, keys = np.nonzero(onset > 0.5)
    return [T.Note((f + 0.5) * hop_s, (f + 1.5) * hop_s, int(k) + T.VOCAB.min_pitch, 64)
            for f, k in zip(frames, keys, strict=True)]


def warm_start(model: HarmonyNet, source: Path) -> HarmonyNet:
    """`model` with the arrays of the model in `source` (weights file or run folder). The
    configs may differ where no parameter changes shape (the front end's n_fft, dropout):
    that is how a trained model moves to a new front end without starting over."""
    try:
        donor = load_weights(source)
    except (WeightsError, CheckpointError, OSError, ValueError) as err:
        raise TrainingError(f"--init-from {source}: {err}") from err
    if donor.config == model.config:
        return donor
    ours, treedef = jax.tree.flatten(eqx.filter(model, eqx.is_array))
    theirs = jax.tree.leaves(eqx.filter(donor, eqx.is_array))
    if len(ours) != len(theirs) or any(a.shape != b.shape for a, b in zip(ours, theirs,
                                                                          strict=False)):
        raise TrainingError(
            f"--init-from {source}: its model ({donor.config.d_model}-wide, stem "
            f"{donor.config.stem}) has parameters of other shapes than --model's; only configs "
            "that keep every parameter shape (e.g. the front end's n_fft) can be warm-started")
    diff = [f.name for f in dataclasses.fields(model.config)
            if getattr(model.config, f.name) != getattr(donor.config, f.name)]
    log.info("warm start across a config change (%s)", ", ".join(diff))
    arrays = jax.tree.unflatten(treedef, [b.astype(a.dtype) for a, b in zip(ours, theirs,
                                                                             strict=True)])
    return eqx.combine(arrays, eqx.filter(model, eqx.is_array, inverse=True))


def build_state(cfg: TrainConfig, model_config: ModelConfig, ckpt: Checkpointer,
                init_from: Path | None) -> tuple[TrainState, optax.GradientTransformation]:
    key = jax.random.key(cfg.seed)
    init_key, train_key = jax.random.split(key)
    model = HarmonyNet(model_config, key=init_key)
    optimizer = make_optimizer(cfg, model)
    opt_state = optimizer.init(params_of(model))
    latest = ckpt.latest_step()
    if latest is not None:
        meta = ckpt.meta(latest)
        if meta.get("phase") != cfg.phase:
            raise TrainingError(
                f"{ckpt.directory} holds a phase-{meta.get('phase')} run; phase {cfg.phase} "
                "needs its own --run-dir (start it with --init-from that run)"
            )
        model, opt_state, train_key, meta = ckpt.restore(model, opt_state, train_key, latest)
        log.info("resumed from step %d of %s", latest, ckpt.directory)
        return TrainState(model, opt_state, train_key, latest,
                          int(meta["loader"]["position"])), optimizer
    if init_from is not None:
        model = warm_start(model, init_from)
        opt_state = optimizer.init(params_of(model))
        log.info("initialised the model from %s", init_from)
    return TrainState(model, opt_state, train_key, 0, 0), optimizer


def train(
    cfg: TrainConfig,
    data_dir: Path,
    run_dir: Path,
    *,
    model_config: ModelConfig | None = None,
    init_from: Path | None = None,
    distributed: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict[str, float]:
    """Runs (or resumes) one phase up to `cfg.steps`; returns the last logged metrics.

    stop_after: leave after this many steps of this invocation (for tests and time budgets).
    """
    check_phase(cfg.phase)
    sharding.maybe_initialize_distributed(distributed)
    model_config = model_config or ModelConfig.preset(cfg.model)
    if cfg.max_tokens > model_config.max_decode_len:
        raise TrainingError(f"max_tokens {cfg.max_tokens} exceeds the model's max_decode_len "
                            f"{model_config.max_decode_len}")
    run_dir = Path(run_dir)
    mesh = sharding.make_mesh(cfg.fsdp)
    local_batch = sharding.local_batch_size(cfg.batch_size, mesh)
    ckpt = Checkpointer(run_dir / "checkpoints", cfg.keep_checkpoints)
    try:
        state, optimizer = build_state(cfg, model_config, ckpt, init_from)
    except CheckpointError as err:
        raise TrainingError(str(err)) from err
    model = sharding.shard_model(state.model, mesh)
    opt_state = sharding.shard_model(state.opt_state, mesh)
    is_main = jax.process_index() == 0
    metrics_log = MetricsLog(run_dir) if is_main else None
    if is_main:
        (run_dir / "config.json").write_text(
            __import__("json").dumps({"train": dataclasses.asdict(cfg),
                                      "model": config_dict(model_config)}, indent=1))

    stream_kw = dict(max_tokens=cfg.max_tokens, frame_hop=model_config.frontend.hop)
    try:
        stream = Stream(data_dir, "train", model_config.segment_samples, local_batch, cfg.seed,
                        shard_index=jax.process_index(), shard_count=jax.process_count(),
                        threads=cfg.loader_threads, prefetch=cfg.prefetch,
                        position=state.loader_position, **stream_kw)
    except (LoaderError, FileNotFoundError, ValueError) as err:
        raise TrainingError(f"training data: {err}") from err
    val_batches = (_validation_batches(cfg, data_dir, model_config, local_batch, mesh, stream_kw)
                   if cfg.eval_every > 0 else [])

    step_fn = make_step(optimizer, cfg)
    evaluate = make_eval(cfg)
    lr = schedule(cfg)
    last: dict[str, float] = {}
    step = state.step
    end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    bar = tqdm(total=cfg.steps, initial=step, disable=not (progress and is_main),
               desc=f"phase {cfg.phase}", unit="step", dynamic_ncols=True)
    window: list[dict] = []
    t0 = time.perf_counter()
    try:
        while step < end:
            if _stop_requests:
                bar.write(f"interrupted: saving step {step}")
                _save(ckpt, step, model, opt_state, state.rng, stream, cfg)
                raise Stopped(_stop_requests[0])
            batch = sharding.global_batch(next(stream), mesh)
            model, opt_state, metrics = step_fn(model, opt_state, batch,
                                                jax.random.fold_in(state.rng, step))
            step += 1
            window.append(metrics)
            bar.update(1)
            if step % cfg.log_every == 0 or step == end:
                host = jax.device_get(window)
                last = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
                last["lr"] = float(lr(step))
                last["examples_per_s"] = len(window) * cfg.batch_size / (time.perf_counter() - t0)
                last["truncated_segments"] = float(stream.truncated_segments)
                window, t0 = [], time.perf_counter()
                bar.set_postfix(loss=f"{last['loss']:.3f}")
                if metrics_log:
                    metrics_log.write(step, "train", last)
            if val_batches and cfg.eval_every > 0 and (step % cfg.eval_every == 0
                                                           or step == cfg.steps):
                scores = validation_scores(cfg, model, val_batches, evaluate)
                if metrics_log:
                    metrics_log.write(step, "validation", scores)
                bar.write(f"step {step} validation: " + ", ".join(
                    f"{k}={v:.4f}" for k, v in sorted(scores.items())))
            if step % cfg.checkpoint_every == 0 or step == end:
                _save(ckpt, step, model, opt_state, state.rng, stream, cfg)
    finally:
        bar.close()
        stream.close()
        if metrics_log:
            metrics_log.close()
    return last


def _save(ckpt, step, model, opt_state, rng, stream, cfg) -> None:
    if ckpt.latest_step() == step:
        return
    try:
        ckpt.save(step, model, opt_state, rng, stream.state_dict(),
                  {"phase": cfg.phase, "train_config": dataclasses.asdict(cfg)})
    except CheckpointError as err:
        raise TrainingError(str(err)) from err


def _validation_batches(cfg, data_dir, model_config, local_batch, mesh, stream_kw) -> list[dict]:
    """A fixed set of validation segments (each piece tiled from its start), kept in memory."""
    try:
        with Stream(data_dir, "validation", model_config.segment_samples, local_batch, 0,
                    shard_index=jax.process_index(), shard_count=jax.process_count(),
                    threads=1, prefetch=1, sequential=True, epochs=1, **stream_kw) as val:
            out = []
            for batch in val:
                if batch["audio"].shape[0] != local_batch or len(out) >= cfg.eval_batches:
                    break
                out.append(sharding.global_batch(batch, mesh))
            return out
    except LoaderError as err:
        log.warning("no validation: %s", err)
        return []


def dummy_batch(cfg: TrainConfig, model_config: ModelConfig, batch: int) -> dict[str, jnp.ndarray]:
    """Zeros of the loader's batch layout (for benchmarks and shape checks)."""
    s = model_config.segment_samples
    t = s // model_config.frontend.hop
    return {
        "audio": np.zeros((batch, s), np.float32),
        "tokens": np.zeros((batch, cfg.max_tokens), np.int32),
        "token_mask": np.zeros((batch, cfg.max_tokens), bool),
        **{k: np.zeros((batch, t, 88), np.float32) for k in ("onset", "frame", "offset",
                                                             "velocity")},
        "pedal": np.zeros((batch, t), np.float32),
        "piece": np.zeros((batch,), np.int64),
        "start_sample": np.zeros((batch,), np.int64),
    }
