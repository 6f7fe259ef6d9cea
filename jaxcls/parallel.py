"""Data parallelism: one `Mesh` over all devices, the batch split along its `data` axis.

The train state and the dataset are replicated; each step's batch is sharded. Under `jax.jit`
XLA inserts the gradient all-reduce and the cross-device BatchNorm statistics itself, so the
sharded step computes the same function as the one-device step (no `axis_name`, no `pmap`).
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxcls.errors import UserError

DATA_AXIS = 'data'


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over `devices` (default: all devices of all processes)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over the mesh, the rest replicated."""
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(field: str, batch_size: int, num_devices: int) -> None:
  n = num_devices
  if batch_size % n:
    raise UserError(
        f'{field}: {batch_size} does not divide over the {n} devices; use a multiple of {n} '
        f'(e.g. --config.{field}={max(n, batch_size // n * n)})')


def put_replicated(array: np.ndarray, mesh: Mesh) -> jax.Array:
  """Copies a host array that every process holds onto every device of the mesh."""
  sharding = replicated(mesh)
  return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])
