r"""Seed A's SeNet101 rows on CIFAR-10: ResNet101b with SE (r = 16) on the residual branch
(SPEC §3).

    python main.py --config configs/senet101.py:sd --workdir runs/senet101

Counts (seed A gives none; the 2021 README's 2.8M matches the total): 2,812,642 params +
24,416 batch_stats = 2,837,058.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`): sd, mish, htd,
cosine, cutout16, mixup0.2, mixup1, cutmix. No SE-Net SD code survives: sd takes ResNet101's
p_L = 0.5.

Seed A's rows, CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/senet101.py     94.30% (seed A also quotes 94.79% "reported by the paper")
    configs/senet101.py:sd  94.65%
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('senet101', arg, sd_survival=0.5)
