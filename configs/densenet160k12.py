r"""Seed A's DenseNet160k12 on CIFAR-10: DenseNet-BC, depth 160, growth rate 12, three dense
blocks of 26 bottleneck layers, compression 0.5 (SPEC §4).

    python main.py --config configs/densenet160k12.py --workdir runs/densenet160k12

Counts: 1,739,002 params + 56,088 batch_stats = 1,795,090 (the 2021 README's "1.8M"),
624.2M FLOPs/2. Seed A's 2020 helper passed depth 100 by mistake; this is the true L = 160.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`, L2 1e-4 on conv
kernels): mish, htd, cosine, cutout16, mixup0.2, mixup1, cutmix. DenseNet has no stochastic depth.

CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/densenet160k12.py  – (no seed-A row)
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('densenet160k12', arg)
