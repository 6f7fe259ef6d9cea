"""SGD with momentum, coupled weight decay, parameter groups, and per-step schedules.

Weight decay is *coupled*: `weight_decay * w` is added to the gradient before momentum, which is
what PyTorch's `SGD(weight_decay=...)` does (seed B) and what a Keras `l2(c)` loss term does
with `weight_decay = 2c` (seed A: `l2(1e-4)` on conv kernels only is `weight_decay=2e-4`,
`weight_decay_on='conv_kernels'`).

Parameter groups (`config.optim.param_groups`) are PyTorch's `param_groups`: each selects leaves
by path and kind and scales the learning rate (`lr_mult`) and the weight decay (`wd_mult`), and
may stop training after `until_epoch`. The decay stays coupled inside each group, so the decay
step of a leaf is `lr * lr_mult * weight_decay * wd_mult * w` (through momentum), exactly as a
torch group with `lr = lr * lr_mult`, `weight_decay = weight_decay * wd_mult` (airbench94,
Jordan 2024, arXiv 2404.00498, sets each group's torch `weight_decay` to a constant divided by
its lr, so that its decay step does not depend on the group's lr: there `wd_mult = 1 / lr_mult`).

Schedules are evaluated per step, so step boundaries fall exactly on epoch starts and the smooth
schedules (cosine, HTD) move every step rather than once per epoch as seed A's callbacks did.
HTD is Hsueh et al. 2018 (arXiv 1806.01593):
    lr_t = lr_min + (lr_0 - lr_min) / 2 * (1 - tanh(L + (U - L) * t / T)).
A run of `num_epochs` epochs is `ceil(num_epochs * steps_per_epoch)` steps (`train_steps`), so a
fractional epoch count ends inside an epoch (airbench94: 9.9 epochs of 48 steps = 476 steps).
"""

import functools
import math
import re
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxcls import models
from jaxcls.errors import UserError

SCHEDULES = ('constant', 'step', 'htd', 'cosine', 'piecewise_linear')
DEFAULT_GROUP = 'default'  # the leaves no group selects: lr_mult = wd_mult = 1
GROUP_FIELDS = ('path', 'kind', 'lr_mult', 'wd_mult', 'until_epoch')


def train_steps(config: ml_collections.ConfigDict, steps_per_epoch: int) -> int:
  """Steps of the whole run: `ceil(num_epochs * steps_per_epoch)`; each epoch drops its last
  partial batch. Rounded to 6 decimals first, so that 0.7 epochs of 10 steps is 7, not 8."""
  return math.ceil(round(config.num_epochs * steps_per_epoch, 6))


def htd_schedule(init_value: float, decay_steps: int, lower: float = -6.0, upper: float = 3.0,
                 end_value: float = 0.0) -> optax.Schedule:
  """Hyperbolic-tangent decay from `init_value` to (about) `end_value` over `decay_steps`."""

  def schedule(count):
    t = jnp.minimum(count, decay_steps) / decay_steps
    return end_value + (init_value - end_value) / 2 * (1 - jnp.tanh(lower + (upper - lower) * t))

  return schedule


def piecewise_linear_schedule(init_value: float, knots: Any, total_steps: int) -> optax.Schedule:
  """Linear between knots `(fraction of training, multiple of init_value)`, constant outside.

  Knot `(f, m)` sits at step `floor(f * total_steps)`, as airbench94's `int(0.23 * total)`:
  there knots ((0, 0.2), (0.23, 1), (1, 0.07)) rise from 0.2 to 1.0 of the peak over the first
  23% of steps and fall to 0.07 at the end.
  """
  fractions, values = _check_knots(knots)
  steps = jnp.array([math.floor(f * total_steps) for f in fractions], jnp.float32)
  values = jnp.array([init_value * v for v in values], jnp.float32)
  return lambda count: jnp.interp(count, steps, values)


def _check_knots(knots: Any) -> tuple[list[float], list[float]]:
  usage = ('schedule.knots: give (fraction of training, multiple of lr) pairs with fractions '
           f'rising in [0, 1], e.g. ((0, 0.2), (0.23, 1), (1, 0.07)); got {knots!r}')
  try:
    fractions, values = zip(*[(float(f), float(v)) for f, v in knots])
  except (TypeError, ValueError):
    raise UserError(usage) from None
  if (not all(0 <= f <= 1 for f in fractions) or any(b <= a for a, b in zip(fractions,
                                                                             fractions[1:]))
      or not all(0 <= v < float('inf') for v in values)):
    raise UserError(usage)
  return list(fractions), list(values)


def create_schedule(config: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
  """The learning rate as a function of the step, from `config.optim.lr` and `config.schedule`."""
  s, lr = config.schedule, config.optim.lr
  total = train_steps(config, steps_per_epoch)
  warmup = int(round(s.warmup_epochs * steps_per_epoch))
  if warmup >= total:
    epochs = f"{config.num_epochs:g} epoch{'' if config.num_epochs == 1 else 's'}"
    raise UserError(f'schedule.warmup_epochs: {s.warmup_epochs:g} leaves no steps after warm-up '
                    f'in {epochs}; use fewer warm-up epochs (e.g. '
                    f'--config.schedule.warmup_epochs={config.num_epochs / 2:g})')
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
  elif s.name == 'piecewise_linear':
    if warmup:
      raise UserError('schedule.warmup_epochs: must be 0 with schedule piecewise_linear; its '
                      'knots give any warm-up (e.g. ((0, 0), (0.1, 1), (1, 0)))')
    main = piecewise_linear_schedule(lr, s.knots, total)
  else:
    raise UserError(f"schedule.name: unknown schedule '{s.name}'; choose one of: "
                    + ', '.join(SCHEDULES))
  if not warmup:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


# --- Parameter groups.

def _leaf_names(path: tuple) -> list[str]:
  return [str(getattr(k, 'key', getattr(k, 'name', k))) for k in path]


def _kernel_owners(params: Any) -> set[tuple[str, ...]]:
  """Module paths that hold a `kernel` (convs, Dense), frozen or not (airbench's whitening conv
  holds a `frozen_kernel`): their `bias` is not a norm's shift."""
  kernels = ('kernel', models.layers.FROZEN_PREFIX + 'kernel')
  return {tuple(_leaf_names(p)[:-1]) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]
          if _leaf_names(p)[-1] in kernels}


# Named leaf kinds a group can select. Normalisation layers are the modules with a `scale` or a
# `bias` but no `kernel` (BatchNorm, and LayerNorm or GroupNorm where a model has them).
PARAM_KINDS: dict[str, Callable[[list[str], Any, set], bool]] = {
    'kernel': lambda names, leaf, owners: names[-1] == 'kernel',
    'conv_kernel': lambda names, leaf, owners: names[-1] == 'kernel' and leaf.ndim == 4,
    'bias': lambda names, leaf, owners: names[-1] == 'bias',
    'bn_bias': lambda names, leaf, owners: (names[-1] == 'bias'
                                            and tuple(names[:-1]) not in owners),
    'bn_scale': lambda names, leaf, owners: (names[-1] == 'scale'
                                             and tuple(names[:-1]) not in owners),
}


def check_param_groups(groups: ml_collections.ConfigDict) -> None:
  """Raises UserError on a malformed `config.optim.param_groups` (no model needed)."""
  for name, group in groups.items():
    field = f'optim.param_groups.{name}'
    if name == DEFAULT_GROUP:
      raise UserError(f"{field}: '{DEFAULT_GROUP}' names the leaves no group selects; "
                      'give the group another name')
    unknown = sorted(set(group) - set(GROUP_FIELDS))
    if unknown:
      raise UserError(f"{field}: unknown field '{unknown[0]}'; a group has: "
                      + ', '.join(GROUP_FIELDS))
    if group.get('path') is None and group.get('kind') is None:
      raise UserError(f'{field}: give a path (regex) or a kind ({", ".join(PARAM_KINDS)})')
    if group.get('kind') is not None and group['kind'] not in PARAM_KINDS:
      raise UserError(f"{field}.kind: unknown kind {group['kind']!r}; choose one of: "
                      + ', '.join(PARAM_KINDS))
    if group.get('path') is not None:
      try:
        re.compile(group['path'])
      except (re.error, TypeError) as e:
        raise UserError(f"{field}.path: not a regular expression ({e}): {group['path']!r}") from e
    for mult in ('lr_mult', 'wd_mult'):
      if not 0 <= group.get(mult, 1.0) < float('inf'):
        raise UserError(f'{field}.{mult}: must be a finite number >= 0, got {group[mult]}')
    if group.get('until_epoch') is not None and not 0 < group['until_epoch'] < float('inf'):
      raise UserError(f"{field}.until_epoch: must be a number of epochs > 0, got "
                      f"{group['until_epoch']}")


def param_group_labels(params: Any, groups: ml_collections.ConfigDict) -> Any:
  """The group name of every leaf of `params` (`DEFAULT_GROUP` where no group selects it).

  A leaf is in a group when its '/'-joined path (`'Block_0/BatchNorm_1/bias'`) matches the
  group's `path` regex (`re.search`) and it is of the group's `kind`; both must hold where both
  are given. A leaf selected by two groups, or a group that selects no leaf, is a UserError.
  """
  owners = _kernel_owners(params)

  def label(path, leaf) -> str:
    names = _leaf_names(path)
    chosen = [name for name, g in groups.items()
              if (g.get('path') is None or re.search(g['path'], '/'.join(names)))
              and (g.get('kind') is None or PARAM_KINDS[g['kind']](names, leaf, owners))]
    if len(chosen) > 1:
      raise UserError(f"optim.param_groups: {'/'.join(names)} is selected by both "
                      f"'{chosen[0]}' and '{chosen[1]}'; make their path or kind exclusive")
    return chosen[0] if chosen else DEFAULT_GROUP

  labels = jax.tree_util.tree_map_with_path(label, params)
  unused = sorted(set(groups) - set(jax.tree.leaves(labels)))
  if unused:
    raise UserError(f'optim.param_groups.{unused[0]}: selects no parameter of this model; fix '
                    'its path or kind (paths look like Block_0/Conv_1/kernel)')
  return labels


def _sgd(config: ml_collections.ConfigDict, lr: optax.Schedule,
         weight_decay: float) -> optax.GradientTransformation:
  """Coupled decay on `optim.weight_decay_on`'s leaves, then SGD with momentum."""
  o = config.optim
  parts = []
  if weight_decay:
    parts.append(optax.add_decayed_weights(
        weight_decay, functools.partial(models.weight_decay_mask, on=o.weight_decay_on)))
  parts.append(optax.sgd(lr, momentum=o.momentum or None, nesterov=o.nesterov))
  return optax.chain(*parts)


def _group_schedule(schedule: optax.Schedule, lr_mult: float,
                    until_step: int | None) -> optax.Schedule:
  if until_step is None:
    return lambda count: lr_mult * schedule(count)
  # A zero learning rate stops the group: no gradient step and no decay from `until_step` on.
  return lambda count: jnp.where(count < until_step, lr_mult * schedule(count), 0.0)


def create_optimizer(config: ml_collections.ConfigDict,
                     steps_per_epoch: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """SGD(momentum, Nesterov) after coupled weight decay, per parameter group; returns
  (tx, the default group's learning-rate schedule)."""
  o = config.optim
  schedule = create_schedule(config, steps_per_epoch)
  models.weight_decay_mask({}, o.weight_decay_on)  # rejects a bad value now, not at init
  groups = o.param_groups
  check_param_groups(groups)
  if not groups:
    return _sgd(config, schedule, o.weight_decay), schedule
  transforms = {DEFAULT_GROUP: _sgd(config, schedule, o.weight_decay)}
  for name, g in groups.items():
    until = g.get('until_epoch')
    until_step = None if until is None else int(round(until * steps_per_epoch))
    lr_mult, wd_mult = g.get('lr_mult', 1.0), g.get('wd_mult', 1.0)
    transforms[name] = (optax.set_to_zero() if lr_mult == 0 else _sgd(
        config, _group_schedule(schedule, lr_mult, until_step), o.weight_decay * wd_mult))
  return optax.partition(transforms, functools.partial(param_group_labels, groups=groups)), schedule
