"""Devices as a mesh with a data axis and an fsdp axis: batches split over both, parameters
replicated (fsdp = 1) or split along their first dimension over the fsdp axis (ZeRO-3 style,
left to GSPMD). Multi-host pods call `jax.distributed.initialize()` first."""

from __future__ import annotations

import os

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA, FSDP = "data", "fsdp"


def maybe_initialize_distributed(force: bool = False) -> None:
    """Joins the other hosts of a pod (TPU/SLURM/env auto-detection) when asked or when the
    coordinator is named in the environment."""
    if force or os.environ.get("JAX_COORDINATOR_ADDRESS"):
        jax.distributed.initialize()


def make_mesh(fsdp: int = 1) -> Mesh:
    devices = jax.devices()
    if fsdp < 1 or len(devices) % fsdp:
        raise ValueError(f"fsdp={fsdp} must divide the {len(devices)} devices")
    grid = np.array(devices).reshape(len(devices) // fsdp, fsdp)
    return Mesh(grid, (DATA, FSDP))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P((DATA, FSDP)))


def param_spec(x: jax.Array, mesh: Mesh) -> P:
    size = mesh.shape[FSDP]
    if size > 1 and x.ndim >= 2 and x.shape[0] % size == 0:
        return P(FSDP)
    return P()


def shard_model(tree, mesh: Mesh):
    """Places every array leaf of a model or optimiser state on the mesh."""

    def place(x):
        if eqx.is_array(x):
            return jax.device_put(x, NamedSharding(mesh, param_spec(x, mesh)))
        return x

    return jax.tree.map(place, tree)


def global_batch(local: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """This host's rows of the batch -> global arrays split over the mesh."""
    sharding = batch_sharding(mesh)
    out = {}
    for key, value in local.items():
        if isinstance(value, np.ndarray) and value.ndim >= 1:
            out[key] = jax.make_array_from_process_local_data(sharding, value)
    return out


def local_batch_size(global_size: int, mesh: Mesh) -> int:
    """Rows each host loads; the global batch must split evenly over hosts and devices."""
    devices = mesh.devices.size
    if global_size % devices:
        raise ValueError(f"batch size {global_size} must be a multiple of the {devices} devices")
    return global_size // jax.process_count()
