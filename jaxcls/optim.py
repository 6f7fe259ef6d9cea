"""SGD with momentum, coupled weight decay, and per-step learning-rate schedules.

Weight decay is *coupled*: `weight_decay * w` is added to the gradient before momentum, which is
what PyTorch's `SGD(weight_decay=...)` does (seed B) and what a Keras `l2(c)` loss term does
with `weight_decay = 2c` (seed A: `l2(1e-4)` on conv kernels only is `weight_decay=2e-4`,
`weight_decay_on='conv_kernels'`).

Schedules are evaluated per step, so step boundaries fall exactly on epoch starts and the smooth
schedules (cosine, HTD) move every step rather than once per epoch as seed A's callbacks did.
HTD is Hsueh et al. 2018 (arXiv 1806.01593):
    lr_t = lr_min + (lr_0 - lr_min) / 2 * (1 - tanh(L + (U - L) * t / T)).
"""

import functools

import jax.numpy as jnp
import ml_collections
import optax

from jaxcls import models
from jaxcls.errors import UserError

SCHEDULES = ('constant', 'step', 'htd', 'cosine')


def htd_schedule(init_value: float, decay_steps: int, lower: float = -6.0, upper: float = 3.0,
                 end_value: float = 0.0) -> optax.Schedule:
  """Hyperbolic-tangent decay from `init_value` to (about) `end_value` over `decay_steps`."""

  def schedule(count):
    t = jnp.minimum(count, decay_steps) / decay_steps
    return end_value + (init_value - end_value) / 2 * (1 - jnp.tanh(lower + (upper - lower) * t))

  return schedule


def create_schedule(config: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
  """The learning rate as a function of the step, from `config.optim.lr` and `config.schedule`."""
  s, lr = config.schedule, config.optim.lr
  total = config.num_epochs * steps_per_epoch
  warmup = int(round(s.warmup_epochs * steps_per_epoch))
  if warmup >= total:
    raise UserError(f'schedule.warmup_epochs: {s.warmup_epochs} leaves no steps after warm-up '
                    f'in {config.num_epochs} epochs; use fewer warm-up epochs')
  decay_steps = total - warmup
  if s.name == 'constant':
    main = optax.constant_schedule(lr)
  elif s.name == 'step':
    # Milestones are epochs counted from the start of training (warm-up included).
    main = optax.piecewise_constant_schedule(
        lr, {int(m * steps_per_epoch) - warmup: s.factor for m in s.milestones})
  elif s.name == 'cosine':
    main = optax.cosine_decay_schedule(lr, decay_steps, alpha=s.lr_min / lr if lr else 0.0)
  elif s.name == 'htd':
    main = htd_schedule(lr, decay_steps, s.htd_lower, s.htd_upper, s.lr_min)
  else:
    raise UserError(f"schedule.name: unknown schedule '{s.name}'; choose one of: "
                    + ', '.join(SCHEDULES))
  if not warmup:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def create_optimizer(config: ml_collections.ConfigDict,
                     steps_per_epoch: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """SGD(momentum, Nesterov) after coupled weight decay; returns (tx, learning-rate schedule)."""
  o = config.optim
  schedule = create_schedule(config, steps_per_epoch)
  parts = []
  if o.weight_decay:
    models.weight_decay_mask({}, o.weight_decay_on)  # rejects a bad value now, not at init
    mask = functools.partial(models.weight_decay_mask, on=o.weight_decay_on)
    parts.append(optax.add_decayed_weights(o.weight_decay, mask))
  parts.append(optax.sgd(schedule, momentum=o.momentum or None, nesterov=o.nesterov))
  return optax.chain(*parts), schedule
