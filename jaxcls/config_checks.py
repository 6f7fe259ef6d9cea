"""A whole config checked before any data is read or anything compiled: `check_config(config)`.

Three layers, each naming the field and the fix in one `UserError` line:
* `FIELDS`: every numeric and boolean field of `configs/default.py` with its type and range (a
  test keeps the table complete), so NaN, a negative learning-rate floor or a 20-digit seed stop
  here instead of in optax or after the data has loaded. The model's own fields are checked by
  the registry, for every family alike (`jaxcls.models.registry`).
* Relations between fields (`lr_min` below `lr`, increasing milestones) and choice fields.
* Each builder run once with stand-in sizes (the model traced abstractly, the optimizer, the
  augmentation, the mixing): they own their fields' remaining checks.

`expand_user_paths` gives `~` the shell's meaning in every path field, once, at the command line.
"""

import dataclasses
import math
import os
from typing import Any, Optional

import jax
import ml_collections
import numpy as np

from jaxcls import averaging, models, optim
from jaxcls.data import augment as augment_lib
from jaxcls.data import mixing
from jaxcls.data import sources
from jaxcls.errors import UserError
from jaxcls.models import patchup

NAN_POLICIES = ('stop', 'skip')
DATA_FEEDS = ('auto', 'device', 'host')
LOSS_REDUCTIONS = ('mean', 'sum')
INT32_MAX = 2**31 - 1  # step counters and sizes live in int32 on the device
# jax.random.key(seed) keeps 32 bits without x64: 2**32 would give seed 0's numbers again.
SEED_MAX = 2**32 - 1
# Fields that hold a path a user types; `~` is expanded in all of them (and in --workdir).
PATH_FIELDS = ('dataset.path', 'dataset.data_dir', 'dataset.cache_dir', 'init_from')


@dataclasses.dataclass(frozen=True)
class Number:
  """What one numeric (or boolean) field allows.

  Attributes:
    kind: int, float or bool. A float field takes an int too; an int field no float.
    low, high: the bounds; `low_open` / `high_open` exclude them. Floats must also be finite.
    optional: None is allowed (a `placeholder` field: "the model's or the data's default").
    each: the field is a tuple of such numbers (a per-channel mean, milestones).
    hint: said after the range, e.g. what 0 means.
  """
  kind: type
  low: float = -math.inf
  high: float = math.inf
  low_open: bool = False
  high_open: bool = False
  optional: bool = False
  each: bool = False
  hint: str = ''

  def describe(self) -> str:
    """The allowed values, as the error message says them."""
    if self.kind is bool:
      text = 'True or False'
    elif self.kind is int:
      text = {(0, INT32_MAX): 'a non-negative integer', (1, INT32_MAX): 'a positive integer'}.get(
          (self.low, self.high), f'an integer from {int(self.low)} to {int(self.high)}')
    elif self.high == math.inf:
      text = 'a finite number' + ('' if self.low == -math.inf else
                                  f' {">" if self.low_open else ">="} {self.low:g}')
    else:
      text = (f'in {"(" if self.low_open else "["}{self.low:g}, {self.high:g}'
              f'{")" if self.high_open else "]"}')
    return ('a tuple, each ' if self.each else '') + text + (f' ({self.hint})' if self.hint
                                                              else '')

  def allows(self, value: Any) -> bool:
    """Whether one number (not None, not a tuple) is allowed."""
    if self.kind is bool:
      return isinstance(value, (bool, np.bool_))
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
      return False
    if self.kind is int and not isinstance(value, (int, np.integer)):
      return False
    if not math.isfinite(value):
      return False
    above = value > self.low if self.low_open else value >= self.low
    below = value < self.high if self.high_open else value <= self.high
    return above and below

  def check(self, field: str, value: Any) -> None:
    """Raises UserError unless `value` is allowed (each entry, for a tuple field)."""
    if value is None and self.optional:
      return
    is_tuple = isinstance(value, (tuple, list))
    numbers = value if is_tuple else [value]
    if is_tuple != self.each or not all(map(self.allows, numbers)):
      description = self.describe()
      if self.kind is int and str(int(self.high)) not in description and any(
          isinstance(v, (int, np.integer)) and v > self.high for v in numbers):
        description += f' (at most {int(self.high)})'
      raise UserError(f'{field}: must be {description}, got {value!r}')


_POSITIVE = Number(int, 1, INT32_MAX)
_PROBABILITY = Number(float, 0.0, 1.0)
_FINITE_NONNEGATIVE = Number(float, 0.0)

# Every numeric and boolean field of configs/default.py outside `model` (the registry checks the
# model's fields by family). Keep in step with default.py: tests/test_config_checks.py fails
# when a field is missing here.
FIELDS: dict[str, Number] = {
    'dataset.num_classes': Number(int, 1, INT32_MAX, optional=True),
    'augment.mean': Number(float, 0.0, 255.0, optional=True, each=True,
                           hint='per channel, 0-255 pixel scale'),
    'augment.std': Number(float, 0.0, 255.0, low_open=True, optional=True, each=True,
                          hint='per channel, 0-255 pixel scale'),
    'augment.crop_padding': Number(int, 0, INT32_MAX, hint='0 disables pad-and-crop'),
    'augment.translate': Number(int, 0, INT32_MAX, optional=True,
                                hint='pixels, reflect padding'),
    'augment.cutout_size': Number(int, 0, INT32_MAX, hint='0 disables Cutout'),
    'augment.cutout_prob': _PROBABILITY,
    'augment.cutout_inside': Number(bool),
    'mix.alpha': Number(float, 0.0, low_open=True, hint='Beta(alpha, alpha); 1 gives U(0, 1)'),
    'mix.prob': _PROBABILITY,
    'mix.patchup_prob': Number(float, 0.0, 1.0, optional=True, hint='None: hard 0.7, soft 1.0'),
    'mix.patchup_gamma': Number(float, 0.0, 1.0, optional=True,
                                hint='None: hard 0.5, soft 0.75'),
    'mix.patchup_block_size': Number(int, 1, INT32_MAX, hint='odd'),
    'mix.patchup_blocks': Number(int, 0, INT32_MAX, hint='0: the input only'),
    'label_smoothing': Number(float, 0.0, 1.0, high_open=True),
    'batch_size': _POSITIVE,
    'eval_batch_size': _POSITIVE,
    'num_epochs': Number(float, 0.0, low_open=True, hint='fractions end inside an epoch'),
    'seed': Number(int, 0, SEED_MAX, hint='JAX random keys keep 32 bits'),
    'optim.lr': _FINITE_NONNEGATIVE,
    'optim.momentum': Number(float, 0.0, 1.0, high_open=True, hint='0 turns momentum off'),
    'optim.nesterov': Number(bool),
    'optim.weight_decay': _FINITE_NONNEGATIVE,
    'schedule.warmup_epochs': _FINITE_NONNEGATIVE,
    'schedule.lr_min': _FINITE_NONNEGATIVE,
    'schedule.milestones': Number(float, 0.0, each=True, hint='epochs, increasing'),
    'schedule.factor': Number(float, 0.0, low_open=True,
                              hint='lr is multiplied by it at each milestone'),
    'schedule.htd_lower': Number(float),
    'schedule.htd_upper': Number(float),
    'log_every_steps': _POSITIVE,
    'progress_every_secs': Number(float, 0.0, low_open=True),
    'expected_gpu_hours': Number(float, 0.0, low_open=True, optional=True,
                                 hint='hours of the whole run on one GPU, named by the CPU '
                                 'warning'),
    'eval_every_epochs': Number(int, 0, INT32_MAX, hint='0: only at the end'),
    'checkpoint_every_steps': _POSITIVE,
    'keep_checkpoints': _POSITIVE,
    'steps_per_dispatch': _POSITIVE,
    'eval.recompute_bn_batches': Number(int, 0, INT32_MAX, hint='0: the running averages'),
    'ema.decay': Number(float, 0.0, 1.0, high_open=True, hint='0 disables averaging'),
    'ema.every': _POSITIVE,
}


def _get(config: ml_collections.ConfigDict, field: str) -> Any:
  """`config`'s value at dotted `field`; None where a hand-built config lacks it."""
  value = config
  for part in field.split('.'):
    value = value.get(part) if value is not None else None
  return value


def check_fields(config: ml_collections.ConfigDict) -> None:
  """Types and ranges of `FIELDS`, then the relations between fields."""
  for field, number in FIELDS.items():
    if _get(config, field) is not None or not number.optional:
      number.check(field, _get(config, field))
  s, lr = config.schedule, config.optim.lr
  if s.name in ('cosine', 'htd') and s.lr_min > lr:
    raise UserError(f'schedule.lr_min: {s.lr_min} is above optim.lr {lr}; the {s.name} '
                    'schedule decays from optim.lr down to lr_min, so set lr_min <= lr')
  if s.name == 'htd' and not s.htd_lower < s.htd_upper:
    raise UserError(f'schedule.htd_lower: {s.htd_lower} must be below schedule.htd_upper '
                    f'{s.htd_upper} (the paper: L = -6, U = 3)')
  if any(b <= a for a, b in zip(s.milestones, s.milestones[1:])):
    raise UserError(f'schedule.milestones: must increase, got {tuple(s.milestones)}; each is an '
                    'epoch at which lr is multiplied by schedule.factor')


def _check_choice(field: str, noun: str, value: Any, allowed: tuple[str, ...]) -> None:
  if value not in allowed:
    raise UserError(f'{field}: unknown {noun} {value!r}; choose one of: {", ".join(allowed)}')


def check_config(config: ml_collections.ConfigDict) -> None:
  """Fails fast on a bad field, before any data is read or anything compiled.

  Raises:
    UserError: the first bad field, by name, with the fix.
  """
  check_fields(config)
  _check_choice('nan_policy', 'policy', config.nan_policy, NAN_POLICIES)
  _check_choice('data_feed', 'feed', config.data_feed, DATA_FEEDS)
  _check_choice('dataset.source', 'source', config.dataset.source, sources.SOURCES)
  _check_choice('mix.cutmix_box', 'box', config.mix.cutmix_box, mixing.CUTMIX_BOXES)
  _check_choice('loss_reduction', 'reduction', config.loss_reduction, LOSS_REDUCTIONS)
  _check_choice('eval.tta', 'mode', config.eval.tta, augment_lib.TTA_MODES)
  averaging.check(config.ema)
  # Built once with stand-in sizes: 10 classes, 32x32x3 images, 1000 steps per epoch.
  model = models.check_buildable(config.model.name,
                                 num_classes=config.dataset.get('num_classes') or 10,
                                 **model_overrides(config))
  optim.create_optimizer(config, steps_per_epoch=1000)
  augment_lib.make_augment(config.augment, mean=(0.0,), std=(1.0,), image_key=jax.random.key(0))
  patchup.split_mix(config.mix, 10, config.label_smoothing, model)


def model_overrides(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """`config.model` minus its name and unset fields: `create_model`'s keyword arguments."""
  return {k: v for k, v in config.model.items() if k != 'name' and v is not None}


def expand_user_paths(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`~` and `~user` expanded in every `PATH_FIELDS` value of `config` (in place; returned).

  The shell expands `--workdir ~/runs` but not `--workdir=~/runs` nor `--config.x=~/data`, so
  the command line's paths are expanded here, all of them, once.
  """
  for field in PATH_FIELDS:
    value = _get(config, field)
    if isinstance(value, str) and value.startswith('~'):
      *parents, leaf = field.split('.')
      target = config
      for part in parents:
        target = target[part]
      target[leaf] = os.path.expanduser(value)
  return config


def check_workdir(workdir: Optional[str]) -> str:
  """`workdir` with `~` expanded; refuses an empty one (an unset shell variable would otherwise
  put the run's files in the current directory)."""
  if workdir is None or not workdir.strip():
    raise UserError(f'--workdir: empty ({workdir!r}); give a directory, or leave the flag out '
                    'for the default runs/<config name>')
  return os.path.expanduser(workdir)
