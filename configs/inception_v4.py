r"""Inception-v4 (Szegedy et al. 2017; the pure Inception-v4, not Inception-ResNet) in its CIFAR
form: the paper's stem at stride 1, size-keeping, then its modules on grids 32 -> 15 -> 7
(`jaxcls/models/inception_v4.py`).

    python main.py --config configs/inception_v4.py:cifar100 --workdir runs/inception_v4_c100

Counts: 41,158,186 params (10 classes; 41,296,516 with 100) + 63,168 batch_stats, 8.48G MACs
at 32x32. `--config.model.stem=imagenet` gives the 299 px network (timm's inception_v4:
42,679,816 params with 1000 classes).

Recipe: weiaicunzai/pytorch-cifar100's (`configs/pytorch_cifar100.py`): 200 epochs, batch 128,
SGD 0.1, momentum 0.9, weight decay 5e-4, lr x0.2 at 60/120/160, one warm-up epoch.

Published CIFAR-100 row (pytorch-cifar100's table, "inceptionv4, 41.3M params"): 24.14% top-1
error, i.e. 75.86% top-1; ours: not measured yet (a full row needs a GPU).
    configs/inception_v4.py:cifar100   24.14% error
Its port differs from ours: its stem starts with an unpadded 3x3 and rebuilds the paper's
branches at stride 1 (grids 30 -> 14 -> 7), and its pool branches count the zero padding.
"""

from configs import pytorch_cifar100


def get_config(arg=None):
  return pytorch_cifar100.recipe('inception_v4', arg, config_file='configs/inception_v4.py',
                                 depth_fields={'stage_sizes': tuple})
