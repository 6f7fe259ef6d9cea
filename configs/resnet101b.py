r"""Seed A's ResNet101b rows on CIFAR-10: pre-activation bottleneck units 3,4,23,3 (SPEC §1).

    python main.py --config configs/resnet101b.py:sd,mish,htd,cutout16 --workdir runs/resnet101b

Counts: 2,506,010 params + 24,416 batch_stats = 2,530,426 (seed A's figure), 149.87M FLOPs/2
(seed A quotes 151.21M for its +SD+Mish row, SPEC §0).

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`): sd (p_L = 0.5),
mish, htd, cosine, cutout16, mixup0.2, mixup1, cutmix.

Seed A's rows, CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/resnet101b.py                       93.79%
    configs/resnet101b.py:sd                    94.40%
    configs/resnet101b.py:sd,mish,htd,cutout16  95.55%
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('resnet101b', arg, sd_survival=0.5)
