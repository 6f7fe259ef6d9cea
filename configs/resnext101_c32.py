r"""Seed A's ResNetXt101C32 rows on CIFAR-10: pre-activation bottleneck 3,4,23,3, inner width half
the output, 3x3 grouped by 32 (SPEC §2).

    python main.py --config configs/resnext101_c32.py:sd --workdir runs/resnext101_c32

Counts (seed A gives none): 2,489,866 params + 32,576 batch_stats, 154.28M FLOPs/2.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`): sd (p_L = 0.5),
mish, htd, cosine, cutout16, mixup0.2, mixup1, cutmix.

Seed A's rows, CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/resnext101_c32.py     94.25%
    configs/resnext101_c32.py:sd  94.88%
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('resnext101_c32', arg, sd_survival=0.5)
