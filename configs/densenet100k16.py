r"""Seed A's DenseNet100k16 on CIFAR-10: DenseNet-BC, depth 100, growth rate 16, three dense
blocks of 16 bottleneck layers, compression 0.5 (SPEC §4).

    python main.py --config configs/densenet100k16.py --workdir runs/densenet100k16

Counts: 1,354,922 params + 31,984 batch_stats = 1,386,906 (the 2021 README's "1.4M"),
511.6M FLOPs/2.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`, L2 1e-4 on conv
kernels): mish, htd, cosine, cutout16, mixup0.2, mixup1, cutmix. DenseNet has no stochastic depth.

CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/densenet100k16.py  – (no seed-A row)
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('densenet100k16', arg)
