r"""Seed A's ResNetXt50C32 rows on CIFAR-10: pre-activation bottleneck 3,4,6,3, inner width half the
output, 3x3 grouped by 32 (SPEC §2).

    python main.py --config configs/resnext50_c32.py:sd --workdir runs/resnext50_c32

Counts (seed A gives none): 1,280,010 params + 15,168 batch_stats, 77.96M FLOPs/2.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`): sd (p_L = 0.5, the
August 2020 code's default), mish, htd, cosine, cutout16, mixup0.2, mixup1, cutmix.

Seed A's rows, CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/resnext50_c32.py     94.07%
    configs/resnext50_c32.py:sd  94.49%
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('resnext50_c32', arg, sd_survival=0.5)
