"""Seed A's CIFAR-10 recipe (MoonArchitect/tensorflow-CNNs, 2020), shared by its model configs.

Seed A states only its row tags (+SD, +Mish, +HTD, +Cosine, +Cutout16, +Mixup0.2, +Mixup1,
+CutMix). Its unstated settings take the values its later README records (SPEC §7): 150 epochs,
batch 1024, SGD Nesterov momentum 0.9, cosine 0.5 -> 0.001 with 10 warm-up epochs, Keras
`l2(1e-4)` on conv kernels only (`weight_decay=2e-4` here: the gradient of 1e-4 * sum(w^2)),
per-channel normalisation with CIFAR-10's mean/std, 4-px SYMMETRIC pad + random crop, flip.
HTD uses L = -6, U = 3 (SPEC §9; seed A never states them) after the same warm-up.

Because the unstated schedule is cosine, a row without +HTD or +Cosine (seed A ran some other,
unrecorded schedule there) gets cosine too: `sd,mish` and `sd,cosine,mish` are the same run.

A model file calls `recipe(model_name, arg, sd_survival=...)`; the variants are the row tags:
    sd        stochastic depth, one draw per block per step, p_l linear from 1 to p_L (SPEC §1)
    mish      Mish in place of every ReLU
    htd       hyperbolic-tangent decay instead of cosine
    cosine    cosine decay (the default schedule; the tag names seed A's row)
    cutout16  a 16x16 Cutout on every image, centre anywhere, clipped
    mixup0.2, mixup1   Mixup with alpha 0.2 or 1
    cutmix    CutMix on every batch, lambda ~ U(0, 1), seed A's corner-anchored box
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import ml_collections

from configs import default
from jaxcls.errors import UserError

VARIANTS = ('sd', 'mish', 'htd', 'cosine', 'cutout16', 'mixup0.2', 'mixup1', 'cutmix')


def exclusive_variants(arg: Optional[str], variants: Mapping[str, Callable[[Any], None]],
                       config_file: str) -> Mapping[str, Callable[[Any], None]]:
  """Returns `variants` (tag -> config edit) after checking that `arg` names at most one of
  them (a model size, an input resolution); raises UserError otherwise."""
  chosen = {v.strip() for v in (arg or '').split(',')} & set(variants)
  if len(chosen) > 1:
    raise UserError(f'--config {config_file}:{arg}: choose one of {", ".join(variants)}')
  return variants


def setter(**fields: Any) -> Callable[[Any], None]:
  """A variant that sets `config.model.<field> = value` for each keyword."""
  def apply(config: Any) -> None:
    for key, value in fields.items():
      config.model[key] = value
  return apply


def resolution_variants(arg: Optional[str], upsample: Mapping[str, int],
                        config_file: str) -> Mapping[str, Callable[[Any], None]]:
  """Exclusive variants such as '96px' that set `model.upsample` (seed A's nearest-neighbour
  upsampling of the 32x32 input)."""
  return exclusive_variants(arg, {tag: setter(upsample=u) for tag, u in upsample.items()},
                            config_file)


def recipe(model_name: str, arg: Optional[str], *, sd_survival: Optional[float] = None,
           config_file: str = '', model_fields: Optional[Mapping[str, Any]] = None,
           extra_variants: Optional[Mapping[str, Callable[[Any], None]]] = None,
           exclude: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """The seed-A config of `model_name` with the row tags in `arg` (comma-separated).

  `sd` is offered only with `sd_survival` (p_L), and no tag in `exclude`; `model_fields` are set
  on `config.model` (so they can be overridden on the command line); `extra_variants` map further
  tags to functions that edit the config.
  """
  extra_variants = dict(extra_variants or {})
  allowed = [v for v in VARIANTS if v not in exclude and (v != 'sd' or sd_survival is not None)]
  allowed += list(extra_variants)
  variants = default.parse_variants(arg, allowed, config_file or f'configs/{model_name}.py')
  config = default.get_config()
  config.model.name = model_name
  for key, value in (model_fields or {}).items():
    config.model[key] = value
  config.dataset.name = 'cifar10'
  config.num_epochs = 150
  config.batch_size = 1024
  config.optim.lr = 0.5
  config.optim.momentum = 0.9
  config.optim.nesterov = True
  config.optim.weight_decay = 2e-4
  config.optim.weight_decay_on = 'conv_kernels'
  config.schedule.name = 'cosine'
  config.schedule.warmup_epochs = 10.0
  config.schedule.lr_min = 0.001
  config.augment.mean = (125.31, 122.95, 113.87)
  config.augment.std = (62.99, 62.09, 66.70)
  config.augment.crop_padding = 4
  config.augment.pad_mode = 'symmetric'
  config.augment.flip = 'random'
  config.checkpoint_every_steps = 2000

  for v in variants:
    if v == 'sd':
      config.model.survival_prob = sd_survival
      config.model.drop_path_mode = 'batch'
    elif v == 'mish':
      config.model.activation = 'mish'
    elif v in ('htd', 'cosine'):
      config.schedule.name = v
    elif v == 'cutout16':
      config.augment.cutout_size = 16
      config.augment.cutout_prob = 1.0
      config.augment.cutout_inside = False
    elif v.startswith('mixup'):
      config.mix.name = 'mixup'
      config.mix.alpha = float(v[len('mixup'):])
    elif v == 'cutmix':
      config.mix.name = 'cutmix'
      config.mix.alpha = 1.0
      config.mix.cutmix_box = 'corner'
    else:
      extra_variants[v](config)
  return config
