r"""Seed A's ResNet34 rows on CIFAR-10: pre-activation basic units 3,4,6,3 (SPEC §1).

    python main.py --config configs/resnet34.py:htd,cutmix --workdir runs/resnet34

Counts: 1,323,418 params + 3,808 batch_stats = 1,327,226 (seed A's figure), 72.40M FLOPs/2.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`): mish, htd, cosine,
cutout16, mixup0.2, mixup1, cutmix. No sd: seed A's stochastic depth code is bottleneck-only.

Seed A's rows, CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/resnet34.py             92.64%
    configs/resnet34.py:htd,cutmix  94.59%
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('resnet34', arg)
