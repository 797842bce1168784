"""Orbax checkpoints of a run: model, optimiser, step, RNG and loader position, written
atomically (temporary folder, then rename), the newest `keep` kept.

Arrays are stored as flat lists of leaves; the tree structure comes from the model built from
the run's config, and the JSON metadata carries that config so a mismatch is caught with a
plain message instead of a shape error deep in orbax.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
import orbax.checkpoint as ocp

from harmonynet_jax.config import ModelConfig
from harmonynet_jax.model import HarmonyNet


class CheckpointError(RuntimeError):
    pass


# Room asked for beyond the raw array bytes (metadata, OCDBT overhead).
SPACE_MARGIN = 1.1


def config_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _leaves(tree) -> list[jax.Array]:
    return jax.tree.leaves(eqx.filter(tree, eqx.is_array))


def _with_leaves(tree, leaves: list) -> Any:
    params, static = eqx.partition(tree, eqx.is_array)
    treedef = jax.tree.structure(params)
    return eqx.combine(jax.tree.unflatten(treedef, leaves), static)


class Checkpointer:
    def __init__(self, directory: str | Path, keep: int = 3) -> None:
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            create=True,
            cleanup_tmp_directories=True,
            enable_async_checkpointing=False,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(
        self,
        step: int,
        model: HarmonyNet,
        opt_state: Any,
        rng: jax.Array,
        loader_state: dict[str, int],
        meta: dict[str, Any],
    ) -> None:
        state = {
            "model": _leaves(model),
            "opt": _leaves(opt_state),
            "rng": jax.random.key_data(rng),
        }
        meta = {**meta, "step": step, "loader": loader_state,
                "model_config": config_dict(model.config)}
        needed = int(sum(x.nbytes for x in jax.tree.leaves(state)) * SPACE_MARGIN)
        free = shutil.disk_usage(self.directory).free
        if free < needed:
            # Checked up front: a write that runs out of space half way is messier to undo.
            raise CheckpointError(self._failure(
                step, f"{free / 2**20:.1f} MiB free, about {needed / 2**20:.1f} MiB needed"))
        try:
            self.manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
                ),
                force=True,
            )
            self.manager.wait_until_finished()
        except (OSError, ValueError) as err:
            # A half-written step stays in a temporary folder; free its space now.
            for tmp in self.directory.glob(f"{step}.orbax-checkpoint-tmp*"):
                shutil.rmtree(tmp, ignore_errors=True)
            raise CheckpointError(self._failure(step, str(err))) from err

    def _failure(self, step: int, why: str) -> str:
        last = self.latest_step()
        return (f"could not write the checkpoint of step {step} under {self.directory}: {why}. "
                + (f"The last good checkpoint (step {last}) is intact." if last is not None
                   else "No earlier checkpoint exists."))

    def meta(self, step: int | None = None) -> dict[str, Any]:
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint under {self.directory}")
        restored = self.manager.restore(
            step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
        )
        return dict(restored["meta"])

    def restore(
        self, model: HarmonyNet, opt_state: Any, rng: jax.Array, step: int | None = None
    ) -> tuple[HarmonyNet, Any, jax.Array, dict[str, Any]]:
        """Fills `model`, `opt_state` and `rng` (as built for this run) from the checkpoint."""
        meta = self.meta(step)
        check_model_config(meta, model.config, self.directory)
        target = {"model": _leaves(model), "opt": _leaves(opt_state),
                  "rng": jax.random.key_data(rng)}
        try:
            restored = self.manager.restore(
                meta["step"],
                args=ocp.args.Composite(state=ocp.args.StandardRestore(target)),
            )["state"]
        except (ValueError, KeyError) as err:
            raise CheckpointError(
                f"checkpoint {meta['step']} under {self.directory} does not fit this run "
                f"(was it saved by another phase or config?): {err}"
            ) from err
        return (
            _with_leaves(model, list(restored["model"])),
            _with_leaves(opt_state, list(restored["opt"])),
            jax.random.wrap_key_data(np.asarray(restored["rng"])),
            meta,
        )

    def restore_model(self, model: HarmonyNet, step: int | None = None) -> HarmonyNet:
        """Only the model's arrays: to start a later phase from an earlier phase's run."""
        meta = self.meta(step)
        check_model_config(meta, model.config, self.directory)
        target = {"model": _leaves(model)}
        restored = self.manager.restore(
            meta["step"],
            args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
                target, restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(), target),
                partial_restore=True,
            )),
        )["state"]
        return _with_leaves(model, list(restored["model"]))


def check_model_config(meta: dict[str, Any], config: ModelConfig, where: Path) -> None:
    saved = meta.get("model_config")
    wanted = config_dict(config)
    if saved:  # fields added since the checkpoint was written take their (old) defaults
        from harmonynet_jax.weights import model_config_from_dict

        with contextlib.suppress(TypeError, KeyError, ValueError):
            saved = config_dict(model_config_from_dict(saved))
    if saved != wanted:
        diff = {k: (saved.get(k) if saved else None, v) for k, v in wanted.items()
                if not saved or saved.get(k) != v}
        raise CheckpointError(
            f"the checkpoint under {where} was made with another model config; "
            f"differences (checkpoint, this run): {diff}"
        )
