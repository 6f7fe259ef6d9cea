"""Precise BatchNorm: population statistics recomputed before an evaluation.

Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm" (arXiv 2105.07576, sec. 3): the running
averages that BatchNorm keeps during training are an EMA over batches computed with *earlier*
weights, and with a high momentum they lag far behind (seed A's 0.99 keeps 0.99^n of the
initial mean 0 / variance 1 after n steps, so a 2-epoch run evaluates with statistics that
are mostly the init's). Precise BN replaces them, for evaluation only, by the exact average over
N training batches of each BN layer's batch mean and (biased) batch variance, computed with the
weights being evaluated; the train state keeps its own running averages.

Each layer's statistics of a batch are read by running the model in training mode with every
`nn.BatchNorm`'s momentum set to 0 through a Flax method interceptor: its running average then
becomes exactly that batch's statistics (`0 * old + 1 * new`), so no model needs changing.
"""

import contextlib
from typing import Any, Callable, Iterator

import flax.linen as nn
import jax
import jax.numpy as jnp


@contextlib.contextmanager
def _zero_momentum() -> Iterator[None]:
  """Within the block, every `nn.BatchNorm` called replaces its running statistics by those of
  the batch: momentum 0. A module's fields are frozen, so the call sees a momentum-0 field on the
  (per-apply) module instance and the field is restored after it."""

  def interceptor(next_fun, args, kwargs, context):
    module = context.module
    if not isinstance(module, nn.BatchNorm) or context.method_name != '__call__':
      return next_fun(*args, **kwargs)
    momentum = module.momentum
    object.__setattr__(module, 'momentum', 0.0)
    try:
      return next_fun(*args, **kwargs)
    finally:
      object.__setattr__(module, 'momentum', momentum)

  with nn.intercept_methods(interceptor):
    yield


def batch_statistics(model: nn.Module, variables: dict, images: jax.Array,
                     rngs: dict[str, jax.Array]) -> Any:
  """Every BN layer's `{'mean', 'var'}` of this batch (NHWC, normalised), as `batch_stats`:
  the model in training mode (its random streams from `rngs`), with `variables`' weights."""
  with _zero_momentum():
    _, updates = model.apply(variables, images, train=True, mutable=['batch_stats'], rngs=rngs)
  return updates['batch_stats']


def make_accumulate_fn(model: nn.Module, augment: Callable, read: Callable,
                       rngs_fn: Callable[[jax.Array, int], dict]) -> Callable:
  """`accumulate(total, variables, step, k, *data) -> total + batch_statistics of batch k`.

  Batch `k` is the one `read(step + k, k, *data)` gives (the train loop's reader: the images
  training step `step + k` would see), augmented as in training with `rngs_fn(step, k)['augment']`;
  the model's streams come from the same `rngs_fn(step, k)`. One batch per call: XLA:CPU runs
  convolutions inside loops slowly, and unrolling N batches would compile N forward passes.
  """

  def accumulate(total, variables, step, k, *data):
    batch = read(step + k, k, *data)
    rngs = rngs_fn(step, k)
    x = augment(rngs.pop('augment'), batch.images, batch.index, batch.epoch)
    stats = batch_statistics(model, variables, x, rngs)
    return jax.tree.map(jnp.add, total, stats)

  return accumulate


def recompute(accumulate: Callable, variables: dict, step: int, num_batches: int,
              *data) -> Any:
  """The average over batches `0 .. num_batches - 1` of `accumulate`'s (jitted
  `make_accumulate_fn`) batch statistics: the precise `batch_stats` for `variables`."""
  total = jax.tree.map(jnp.zeros_like, variables['batch_stats'])
  for k in range(num_batches):
    total = accumulate(total, variables, step, k, *data)
  return jax.tree.map(lambda t: t / num_batches, total)
