"""Weight averaging: an EMA of the weights kept beside them, or lookahead (airbench94).

Both keep `ema = {'params', 'batch_stats'}` in the train state, started from the initial
weights, and update it every `every` steps from the weights after that step's update:

    ema <- alpha * ema + (1 - alpha) * weights        (BatchNorm statistics included)

- mode 'ema': alpha = decay ** every (`decay` is per step), and evaluation uses the EMA
  instead of the weights, which train on unchanged (Polyak averaging; timm's ModelEmaV2 also
  averages the BN statistics).
- mode 'lookahead' (Jordan 2024, arXiv 2404.00498; airbench94's `LookaheadState`, a form of
  Zhang et al. 2019's Lookahead): after each update of the EMA the weights are reset to it, with
  alpha = decay ** every * (t / T) ** 3 at step t of T, so the pull grows from nothing to
  decay ** every at the end; after the last step the weights are set to the EMA (airbench's
  `update(decay=1.0)`: with T not a multiple of `every`, the steps after the last EMA update
  are dropped). Evaluation uses the weights, which equal the EMA at every EMA update.

The EMA is part of the checkpointed train state, so a resumed run continues it bitwise. airbench
copies its EMA before the whitening layer's data-dependent init and so lerps that frozen kernel
towards its random init by alpha(5) ~ 1e-6 once; ours starts from the initialised weights.
"""

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxcls.errors import UserError

MODES = ('ema', 'lookahead')
LOOKAHEAD_POWER = 3  # airbench94's cubic ramp of alpha over training


def check(ema_config: ml_collections.ConfigDict) -> None:
  """Raises UserError on a bad `config.ema`."""
  if not 0 <= ema_config.decay < 1:
    raise UserError(f'ema.decay: must be in [0, 1) (0 disables averaging), got {ema_config.decay}')
  if ema_config.mode not in MODES:
    raise UserError(f"ema.mode: unknown mode {ema_config.mode!r}; choose one of: "
                    + ', '.join(MODES))
  if isinstance(ema_config.every, bool) or not isinstance(ema_config.every, int) or (
      ema_config.every < 1):
    raise UserError(f'ema.every: must be a positive number of steps, got {ema_config.every!r}')


def enabled(ema_config: ml_collections.ConfigDict) -> bool:
  return ema_config.decay > 0


def start(ema_config: ml_collections.ConfigDict, params: Any, batch_stats: Any) -> dict:
  """The EMA at step 0: a copy of the weights, or `{}` when averaging is off."""
  if not enabled(ema_config):
    return {}
  return jax.tree.map(jnp.copy, {'params': params, 'batch_stats': batch_stats})


def lookahead_alpha(decay: float, every: int, step: jax.Array, num_steps: int) -> jax.Array:
  """airbench94's alpha at step `step` (counted from 1): decay**every * (step / T)**3."""
  return decay ** every * (step / num_steps) ** LOOKAHEAD_POWER


def make_update(ema_config: ml_collections.ConfigDict,
                num_steps: int) -> Optional[Callable[[Any], Any]]:
  """`update(state) -> state` to run after each optimizer step (`state.step` counts that step),
  on a train state with `params`, `batch_stats` and `ema`; None when averaging is off."""
  check(ema_config)
  if not enabled(ema_config):
    return None
  decay, every, lookahead = ema_config.decay, ema_config.every, ema_config.mode == 'lookahead'

  def update(state):
    weights = {'params': state.params, 'batch_stats': state.batch_stats}
    due = state.step % every == 0
    alpha = (lookahead_alpha(decay, every, state.step, num_steps) if lookahead
             else decay ** every)
    averaged = optax.incremental_update(weights, state.ema, 1 - alpha)
    ema = jax.tree.map(lambda new, old: jnp.where(due, new, old), averaged, state.ema)
    if lookahead:
      reset = due | (state.step == num_steps)
      weights = jax.tree.map(lambda e, w: jnp.where(reset, e, w), ema, weights)
    return state.replace(ema=ema, **weights)

  return update


def evaluated(ema_config: ml_collections.ConfigDict, state: Any) -> dict:
  """The `{'params', 'batch_stats'}` to evaluate: the EMA in mode 'ema', else the weights."""
  if enabled(ema_config) and ema_config.mode == 'ema':
    return state.ema
  return {'params': state.params, 'batch_stats': state.batch_stats}
