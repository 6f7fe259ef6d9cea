r"""Seed A's DenseNet250k12 on CIFAR-10: DenseNet-BC, depth 250, growth rate 12, three dense
blocks of 41 bottleneck layers, compression 0.5 (SPEC §4).

    python main.py --config configs/densenet250k12.py --workdir runs/densenet250k12

Counts: 3,900,262 params + 128,988 batch_stats = 4,029,250, 1,355.0M FLOPs/2.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`, L2 1e-4 on conv
kernels): mish, htd, cosine, cutout16, mixup0.2, mixup1, cutmix. DenseNet has no stochastic depth.

CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/densenet250k12.py  – (no seed-A row)
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('densenet250k12', arg)
