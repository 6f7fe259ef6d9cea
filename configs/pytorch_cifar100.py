"""The CIFAR recipe of weiaicunzai/pytorch-cifar100, whose table holds the published CIFAR-100
figures of the Inception-v3, Inception-v4 and Xception rows (SPEC §10), shared by their configs.

Its README ("Training Details") and train.py: 200 epochs, batch 128, SGD lr 0.1, momentum 0.9
without Nesterov, PyTorch's coupled weight decay 5e-4 on all parameters, lr x0.2 at epochs 60,
120 and 160, a linear warm-up over the first epoch (`-warm 1`), plain cross-entropy; data: a
4-px zero-pad random crop, a horizontal flip and per-channel normalisation with the training
split's mean/std. train.py steps `MultiStepLR(milestones=[60, 120, 160])` with the 1-based epoch
at the start of each epoch, so the lr drops from 0-based epoch 59: the milestones here are
59, 119, 159. Not reproduced: its `RandomRotation(15)` (jaxcls has no rotation augmentation).

Its models are its own CIFAR ports of the papers' networks, which differ from ours in details
(each model config says how); ours are the papers' modules with a CIFAR stem (SPEC §11).

Variants: `cifar100` trains and evaluates on CIFAR-100, the dataset of the published rows (the
default is CIFAR-10).
"""

from collections.abc import Mapping
from typing import Optional

import ml_collections
from ml_collections import config_dict

from configs import default

VARIANTS = ('cifar100',)


def recipe(model_name: str, arg: Optional[str], *, config_file: str,
           depth_fields: Mapping[str, type]) -> ml_collections.ConfigDict:
  """The recipe for `model_name` in its CIFAR form (`model.stem='cifar'`).

  `model.width_mult`, `model.dropout_rate` and the model's `depth_fields` (name: type) are
  placeholders, None meaning the model's preset, listed so that the command line can set them.
  """
  variants = default.parse_variants(arg, VARIANTS, config_file)
  config = default.get_config()
  config.model.name = model_name
  config.model.stem = 'cifar'  # 'imagenet': the 299 px network
  config.model.width_mult = config_dict.placeholder(float)
  config.model.dropout_rate = config_dict.placeholder(float)
  for key, kind in depth_fields.items():
    config.model[key] = config_dict.placeholder(kind)
  config.dataset.name = 'cifar100' if 'cifar100' in variants else 'cifar10'
  config.num_epochs = 200
  config.batch_size = 128
  config.optim.lr = 0.1
  config.optim.momentum = 0.9
  config.optim.nesterov = False
  config.optim.weight_decay = 5e-4
  config.optim.weight_decay_on = 'all'
  config.schedule.name = 'step'
  config.schedule.warmup_epochs = 1.0
  config.schedule.milestones = (59, 119, 159)
  config.schedule.factor = 0.2
  config.label_smoothing = 0.0
  config.mix.name = 'none'
  config.augment.mean = None  # from the training split, as the repository's statistics are
  config.augment.std = None
  config.augment.crop_padding = 4
  config.augment.pad_mode = 'zero'
  config.augment.flip = 'random'
  config.augment.cutout_size = 0
  return config
