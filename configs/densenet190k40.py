r"""Seed A's DenseNet190k40 on CIFAR-10: DenseNet-BC, depth 190, growth rate 40, three dense
blocks of 31 bottleneck layers, compression 0.5 (SPEC §4).

    python main.py --config configs/densenet190k40.py --workdir runs/densenet190k40

Counts: 25,624,430 params (the paper's "25.6M", which seed A quotes) + 256,960
batch_stats, 9,301.9M FLOPs/2.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`, L2 1e-4 on conv
kernels): mish, htd, cosine, cutout16, mixup0.2, mixup1, cutmix. DenseNet has no stochastic depth.

CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/densenet190k40.py  96.54% (the DenseNet paper's figure, which seed A quotes)
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('densenet190k40', arg)
