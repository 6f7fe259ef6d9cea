"""Epoch order, and host feeding: each process sends its own rows of every batch.

Epoch `e` visits the train split in the order `permutation(fold_in(data_key, e))`, a function
of the key alone, so a resumed run sees the same batches. On one host the train loop gathers
each batch on the device from that permutation (`jaxcls.train`); with several processes (or
`config.data_feed='host'`) `HostFeed` gathers this process's rows on the host and places them
on its own devices (`jax.make_array_from_process_local_data`).
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxcls import parallel
from jaxcls.data.base import LabeledImages


def epoch_permutation(data_key: jax.Array, epoch: jax.Array, num_examples: int) -> jax.Array:
  return jax.random.permutation(jax.random.fold_in(data_key, epoch), num_examples)


def make_epoch_pair_fn(data_key: jax.Array, num_examples: int, sharding) -> Callable:
  """Jitted `epoch0 -> (2, num_examples)`: the permutations of epochs `epoch0` and `epoch0 + 1`,
  placed with `sharding`, as a device-fed train call takes them (`train.make_train_fn`)."""
  return jax.jit(lambda e: jnp.stack([epoch_permutation(data_key, e + i, num_examples)
                                      for i in range(2)]), out_shardings=sharding)


class HostFeed:
  """Batches for host-fed train functions: this process's rows of each step's batch, gathered
  from its host copy of the train split and sent to its own devices only.

  The epoch permutation is computed on the host CPU: the same numbers the device-fed path draws
  (a function of the key only), without waiting for the accelerator's queue.
  """

  def __init__(self, split: LabeledImages, data_key: jax.Array, *, batch_size: int,
               steps_per_epoch: int, mesh):
    self.split, self.batch_size, self.steps_per_epoch, self.mesh = (
        split, batch_size, steps_per_epoch, mesh)
    self.rows = parallel.process_rows(mesh, batch_size)
    try:
      host = jax.local_devices(backend='cpu')[0]
    except RuntimeError:  # JAX_PLATFORMS without cpu: an accelerator, waiting once per epoch
      host = jax.local_devices()[0]
    self._data_key = jax.device_put(data_key, host)
    self._permute = jax.jit(functools.partial(epoch_permutation,
                                              num_examples=len(split.labels)))
    self._perms: dict[int, np.ndarray] = {}

  def _permutation(self, epoch: int) -> np.ndarray:
    if epoch not in self._perms:
      self._perms = {e: p for e, p in self._perms.items() if e == epoch - 1}
      self._perms[epoch] = np.asarray(self._permute(self._data_key, epoch))
    return self._perms[epoch]

  def __call__(self, step: int, num_steps: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Images, labels and their rows in the split (`index`, for per-image augmentation) of steps
    `step .. step + num_steps - 1`, each `(num_steps, batch, ...)`."""
    index = np.stack([
        self._permutation(epoch)[position * self.batch_size + self.rows]
        for epoch, position in (divmod(t, self.steps_per_epoch)
                                for t in range(step, step + num_steps))])
    return tuple(parallel.put_process_local(a, self.mesh, self.batch_size)
                 for a in (self.split.images[index], self.split.labels[index],
                           index.astype(np.int32)))
