"""Seed B's Fashion-MNIST recipe (jungwon1413/pytorch_image_classification, 2018), shared by its
five model configs (SPEC §6, §7).

Every row trains on the first 30,000 training images and evaluates on the other 40,000 (the
remaining 30,000 training images + the 10,000 test images), with PyTorch's coupled SGD
`weight_decay` on ALL parameters (BN and biases included), plain cross-entropy and PyTorch's
init and BatchNorm (`model.convention='torch'`: BN momentum 0.1, i.e. flax 0.9, eps 1e-5).

Data, two variants:
- default, the README's "Random Crop & Flip": a random 28x28 crop of the image zero-padded by 4
  px, a horizontal flip, and per-channel normalisation with the training split's mean/std. This
  is hysts/pytorch_image_classification's Fashion-MNIST pipeline (`RandomCrop(28, padding=4)`),
  the code behind the Shake-Shake rows; the notebooks' own coded transform (reflect pad,
  `RandomCrop(32)`, CIFAR mean/std) could not have run on 28x28 1-channel images as written.
- `as_run`, what the notebooks actually ran: their split path wraps raw tensors in a
  `TensorDataset`, which bypasses every transform, so no crop, no flip, no normalisation (float
  pixels 0-255), and no Cutout. The Shake-Shake notebooks are missing; `as_run` assumes they
  shared that path.

Step schedules are evaluated at epoch + 1 in the notebooks, so "x0.2 at 60" means lr drops from
0-based epoch 59: the milestones here are the published epochs minus one.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Optional

import ml_collections

from configs import default

VARIANTS = ('as_run',)


def recipe(model_name: str, arg: Optional[str], *, config_file: str,
           model_fields: Mapping[str, Any], num_epochs: int, batch_size: int, lr: float,
           nesterov: bool, weight_decay: float, schedule: str, seed: int,
           milestones: Sequence[int] = (), factor: float = 0.1,
           cutout_size: int = 0) -> ml_collections.ConfigDict:
  """One seed-B row: the table's numbers as keywords; `arg` may be 'as_run'."""
  variants = default.parse_variants(arg, VARIANTS, config_file)
  config = default.get_config()
  config.model.name = model_name
  config.model.convention = 'torch'
  for key, value in model_fields.items():  # listed so that the command line can override them
    config.model[key] = value
  config.dataset.name = 'fashion_mnist'
  config.dataset.train_split = 'train[:30000]'
  config.dataset.eval_split = 'train[30000:]+test'
  config.seed = seed
  config.num_epochs = num_epochs
  config.batch_size = batch_size
  config.eval_batch_size = 500
  config.optim.lr = lr
  config.optim.momentum = 0.9
  config.optim.nesterov = nesterov
  config.optim.weight_decay = weight_decay
  config.optim.weight_decay_on = 'all'
  config.schedule.name = schedule
  config.schedule.warmup_epochs = 0.0
  config.schedule.lr_min = 0.0
  config.schedule.milestones = tuple(milestones)
  config.schedule.factor = factor
  config.label_smoothing = 0.0
  config.mix.name = 'none'

  config.augment.mean = None  # from the training split
  config.augment.std = None
  config.augment.crop_padding = 4
  config.augment.pad_mode = 'zero'
  config.augment.flip = 'random'
  config.augment.cutout_size = cutout_size
  config.augment.cutout_prob = 1.0
  config.augment.cutout_inside = False
  if 'as_run' in variants:
    config.augment.mean = (0.0,)
    config.augment.std = (1.0,)
    config.augment.crop_padding = 0
    config.augment.flip = 'none'
    config.augment.cutout_size = 0
  return config
