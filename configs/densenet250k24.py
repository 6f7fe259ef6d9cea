r"""Seed A's DenseNet250k24 on CIFAR-10: DenseNet-BC, depth 250, growth rate 24, three dense
blocks of 41 bottleneck layers, compression 0.5 (SPEC §4).

    python main.py --config configs/densenet250k24.py --workdir runs/densenet250k24

Counts: 15,324,406 params (the paper's "15.3M", which seed A quotes) + 257,976
batch_stats, 5,418.8M FLOPs/2.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`, L2 1e-4 on conv
kernels): mish, htd, cosine, cutout16, mixup0.2, mixup1, cutmix. DenseNet has no stochastic depth.

CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/densenet250k24.py  96.38% (the DenseNet paper's figure, which seed A quotes)
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('densenet250k24', arg)
