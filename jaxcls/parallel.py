"""Data parallelism: one `Mesh` over all devices, the batch split along its `data` axis.

The train state and the dataset are replicated; each step's batch is sharded. Under `jax.jit`
XLA inserts the gradient all-reduce and the cross-device BatchNorm statistics itself, so the
sharded step computes the same function as the one-device step (no `axis_name`, no `pmap`).

Several processes (hosts) join one run through `initialize_distributed` before anything touches
a device; the mesh then spans the devices of every process, and a process can only fill the
rows of a global array that its own devices hold (`process_rows`, `put_process_local`).
"""

import os
import subprocess
import sys
from typing import Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxcls.errors import UserError

DATA_AXIS = 'data'


def _launched_by_a_launcher() -> bool:
  """Whether the environment says a launcher started several processes of this run.

  `jax.distributed.initialize()` then finds the coordinator, the count and the id itself; this
  only decides whether to call it, so that a plain `python main.py` stays a single process.
  """
  if os.environ.get('JAX_COORDINATOR_ADDRESS'):
    return True
  if 'SLURM_STEP_NODELIST' in os.environ:  # inside `srun`, not merely inside an allocation
    return int(os.environ.get('SLURM_NTASKS', '1')) > 1
  return int(os.environ.get('OMPI_COMM_WORLD_SIZE', '1')) > 1


def initialize_distributed(coordinator_address: Optional[str] = None,
                           num_processes: Optional[int] = None,
                           process_id: Optional[int] = None) -> bool:
  """Joins a multi-process run; returns whether one was joined.

  Explicit arguments win (JAX completes the missing ones from the environment). Without them,
  `jax.distributed.initialize()` runs only under a launcher that started several processes:
  `JAX_COORDINATOR_ADDRESS` set, `srun` with more than one task, or `mpirun` (Open MPI). Must be
  called before anything touches a device.
  """
  explicit = (coordinator_address, num_processes, process_id) != (None, None, None)
  if not explicit and not _launched_by_a_launcher():
    return False
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  except (ValueError, TypeError, RuntimeError) as e:
    raise UserError(
        f'--coordinator_address/--num_processes/--process_id: cannot start the multi-process '
        f'run ({" ".join(str(e).split())}); give all three flags (or run under srun / mpirun), '
        'with the same address on every process and ids 0..num_processes-1') from e
  return True


_PROBE = ('import jax; d = jax.devices(); '
          'print(f"{d[0].platform} ({len(d)} device{\'s\' if len(d) > 1 else \'\'})")')


def _available_devices() -> str:
  """What JAX starts here when left to choose, asked of a fresh process: this one's backends
  cannot be started again after a failure."""
  env = {k: v for k, v in os.environ.items() if k != 'JAX_PLATFORMS'}
  try:
    probe = subprocess.run([sys.executable, '-c', _PROBE], env=env, capture_output=True,
                           text=True, timeout=120, check=False)
  except (OSError, subprocess.TimeoutExpired):
    return 'unknown'
  return probe.stdout.strip() if probe.returncode == 0 and probe.stdout.strip() else 'none'


def requested_platforms() -> str:
  """`JAX_PLATFORMS` (or `jax.config.update('jax_platforms', ...)`); '' when JAX chooses."""
  return jax.config.jax_platforms or ''


def check_devices() -> None:
  """Starts JAX's devices, so that a platform that cannot start (`JAX_PLATFORMS=cuda` on a
  machine without a GPU) is one line naming it and what the machine has, not a traceback from
  inside the first trace. Call it after `initialize_distributed`, before anything else uses JAX.

  Raises:
    UserError: the requested platform did not start.
  """
  try:
    jax.devices()
  except Exception as e:  # pylint: disable=broad-except  # RuntimeError, or a bare assert
    requested = requested_platforms()
    reason = ' '.join(str(e).split('(set JAX_PLATFORMS')[0].split()) or (
        f'no {requested} device was found')
    raise UserError(f'JAX_PLATFORMS={requested}: JAX cannot start {requested!r} on this machine '
                    f'({reason}); what starts here: {_available_devices()}; unset '
                    'JAX_PLATFORMS to use it (or install the jax plugin for your '
                    'accelerator)') from e


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


def process_rows(mesh: Mesh, batch_size: int) -> np.ndarray:
  """The rows of a `batch_sharded` global batch that this process's devices hold, in the order
  `jax.make_array_from_process_local_data` takes them (ascending)."""
  index_map = batch_sharded(mesh).addressable_devices_indices_map((batch_size,))
  blocks = sorted({(s[0].start or 0, batch_size if s[0].stop is None else s[0].stop)
                   for s in index_map.values()})
  return np.concatenate([np.arange(start, stop) for start, stop in blocks])


def put_process_local(local: np.ndarray, mesh: Mesh, batch_size: int) -> jax.Array:
  """`(steps, batch_size, ...)` global array from this process's `(steps, rows, ...)` part,
  the rows of `process_rows`; sharded over the batch axis, axis 0 replicated."""
  sharding = NamedSharding(mesh, P(None, DATA_AXIS))
  global_shape = (local.shape[0], batch_size, *local.shape[2:])
  return jax.make_array_from_process_local_data(sharding, local, global_shape)
