r"""Seed A's SeNet50 rows on CIFAR-10: ResNet50b with SE (r = 16) on the residual branch (SPEC §3).

    python main.py --config configs/senet50.py:sd --workdir runs/senet50

Counts (seed A gives none; the 2021 README's 1.5M matches the total): 1,471,954 params +
11,360 batch_stats = 1,483,314.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`): sd, mish, htd,
cosine, cutout16, mixup0.2, mixup1, cutmix. No SE-Net SD code survives: sd takes ResNet50's
p_L = 0.7.

Seed A's rows, CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/senet50.py     93.40%
    configs/senet50.py:sd  94.25%
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('senet50', arg, sd_survival=0.7)
