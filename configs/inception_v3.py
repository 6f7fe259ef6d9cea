r"""Inception-v3 (Szegedy et al. 2016) in its CIFAR form: the paper's modules after a stride-1
stem without max-pools, grids 32 -> 15 -> 7 (`jaxcls/models/inception_v3.py`).

    python main.py --config configs/inception_v3.py:cifar100 --workdir runs/inception_v3_c100

Counts: 21,806,058 params (10 classes; 21,990,468 with 100) + 34,432 batch_stats, 3.63G MACs
at 32x32. `--config.model.stem=imagenet` gives the 299 px network (torchvision's
inception_v3 without the aux head: 23,834,568 params with 1000 classes).

Recipe: weiaicunzai/pytorch-cifar100's (`configs/pytorch_cifar100.py`): 200 epochs, batch 128,
SGD 0.1, momentum 0.9, weight decay 5e-4, lr x0.2 at 60/120/160, one warm-up epoch.

Published CIFAR-100 row (pytorch-cifar100's table, "inceptionv3, 22.3M params"): 22.81% top-1
error, i.e. 77.19% top-1; ours: not measured yet (a full row needs a GPU).
    configs/inception_v3.py:cifar100   22.81% error
Its port differs from ours: its stem's last 3x3 is unpadded (grids 30 -> 14 -> 6), the pool
branch of its 35x35 modules is a 3x3 conv, and the pool of its second grid reduction is an
average pool; ours keeps the paper's (torchvision's) modules.
"""

from configs import pytorch_cifar100


def get_config(arg=None):
  return pytorch_cifar100.recipe('inception_v3', arg, config_file='configs/inception_v3.py',
                                 depth_fields={'stage_sizes': tuple})
