r"""Seed A's DenseNet100k12 on CIFAR-10: DenseNet-BC, depth 100, growth rate 12, three dense
blocks of 16 bottleneck layers, compression 0.5 (SPEC §4).

    python main.py --config configs/densenet100k12.py --workdir runs/densenet100k12

Counts: 769,162 params + 23,988 batch_stats = 793,150 (the 2021 README's "0.79M"), 287.9M FLOPs/2.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`, L2 1e-4 on conv
kernels): mish, htd, cosine, cutout16, mixup0.2, mixup1, cutmix. DenseNet has no stochastic depth.

CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/densenet100k12.py  – (no seed-A row; the DenseNet paper: 95.49%, C10+)
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('densenet100k12', arg)
