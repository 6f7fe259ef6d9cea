r"""PyramidNet rows on CIFAR-10 / CIFAR-100 (Han et al. 2017), with ShakeDrop (Yamada et al.
2018): SPEC sections 9-11.

    python main.py --config configs/pyramidnet.py:272_a200,shakedrop --workdir runs/pyr272_sd

Recipe (the authors' Torch code, jhkim89/PyramidNet on fb.resnet.torch; imenurok/ShakeDrop trains
ShakeDrop with the same): 300 epochs, batch 128, SGD lr 0.5 (for CIFAR-10 and CIFAR-100 alike),
Nesterov momentum 0.9, weight decay 1e-4 on all parameters, lr x0.1 at epochs 150 and 225
(milestones 149 and 224: fb.resnet.torch counts epochs from 1), 4-px zero-pad crop and flip,
per-channel normalisation with the training split's statistics, PyTorch init and BatchNorm
(`model.convention='torch'`, as the Torch code: conv weights normal(0, sqrt(2 / (k*k*out)))).

Variants (comma-separated): the model, one of 110_a48 (the default), 110_a84, 110_a270,
164_a270, 200_a240, 236_a220, 272_a200 (the last four are bottleneck nets); `shakedrop`
(ShakeDrop on every unit, p_L = 0.5, one (alpha, beta) pair per image; the paper and its Torch
code draw them per element: `--config.model.shakedrop_level=pixel`); `cifar100`.

Published top-1 error, CIFAR-10 / CIFAR-100 (ours: not measured yet, a full row needs a GPU):
    configs/pyramidnet.py                        4.62% (jhkim89/PyramidNet README)
    configs/pyramidnet.py:cifar100               23.31%
    configs/pyramidnet.py:110_a84                4.27%; with cifar100 20.21%
    configs/pyramidnet.py:110_a270               3.77%; with cifar100 18.29%
    configs/pyramidnet.py:272_a200               3.31% (the paper; hysts README)
    configs/pyramidnet.py:272_a200,shakedrop     2.7% (FastAutoAugment README's baseline)
    configs/pyramidnet.py:272_a200,shakedrop,cifar100   14.0%
    configs/pyramidnet.py:110_a270,shakedrop,cifar100   15.78% at shakedrop_level=pixel
                                                 (imenurok/ShakeDrop README)
PyramidNet-272 alpha 200 + ShakeDrop + AutoAugment reaches 1.5% on CIFAR-10 (FastAutoAugment
README; 1800 epochs, batch 64, lr 0.05 cosine, weight decay 5e-5); jaxcls has no AutoAugment.
"""

import ml_collections

from configs import default
from jaxcls.errors import UserError
from jaxcls.models import create_model

MODELS = {
    '110_a48': 'pyramidnet110_a48', '110_a84': 'pyramidnet110_a84',
    '110_a270': 'pyramidnet110_a270', '164_a270': 'pyramidnet164_a270_bn',
    '200_a240': 'pyramidnet200_a240_bn', '236_a220': 'pyramidnet236_a220_bn',
    '272_a200': 'pyramidnet272_a200_bn',
}
VARIANTS = (*MODELS, 'shakedrop', 'cifar100')
CONFIG_FILE = 'configs/pyramidnet.py'


def get_config(arg=None) -> ml_collections.ConfigDict:
  variants = default.parse_variants(arg, VARIANTS, CONFIG_FILE)
  picked = [v for v in variants if v in MODELS]
  if len(picked) > 1:
    raise UserError(f"--config {CONFIG_FILE}:{arg}: choose one model of "
                    f"{', '.join(MODELS)}")
  name = MODELS[picked[0] if picked else '110_a48']
  model = create_model(name)
  config = default.get_config()
  config.model.name = name
  # Listed so that the command line can override them (a reduced net: --config.model.depth=20).
  config.model.depth = model.depth
  config.model.alpha = float(model.alpha)
  config.model.bottleneck = model.bottleneck
  config.model.shakedrop = 'shakedrop' in variants
  config.model.shakedrop_final_prob = model.shakedrop_final_prob
  config.model.shakedrop_level = model.shakedrop_level
  config.model.convention = 'torch'

  config.dataset.name = 'cifar100' if 'cifar100' in variants else 'cifar10'
  config.num_epochs = 300
  config.batch_size = 128
  config.optim.lr = 0.5
  config.optim.momentum = 0.9
  config.optim.nesterov = True
  config.optim.weight_decay = 1e-4
  config.optim.weight_decay_on = 'all'
  config.schedule.name = 'step'
  config.schedule.milestones = (149, 224)
  config.schedule.factor = 0.1
  config.schedule.warmup_epochs = 0.0
  config.augment.mean = None  # from the training split
  config.augment.std = None
  config.augment.crop_padding = 4
  config.augment.pad_mode = 'zero'
  config.augment.flip = 'random'
  config.mix.name = 'none'
  config.label_smoothing = 0.0
  return config
