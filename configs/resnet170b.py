r"""Seed A's ResNet170b row on CIFAR-10: pre-activation bottleneck units 4,10,36,6 (SPEC §1).

    python main.py --config configs/resnet170b.py:mish,htd,cutmix --workdir runs/resnet170b

Counts: 4,372,698 params + 41,504 batch_stats = 4,414,202 (seed A's figure), 252.37M FLOPs/2.
The split 4,10,36,6 is the only 56-unit one that reproduces seed A's count (no 2020 code).

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`): mish, htd, cosine,
cutout16, mixup0.2, mixup1, cutmix. No sd: seed A has no SD code for this depth.

Seed A's rows, CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/resnet170b.py:mish,htd,cutmix  – (seed A published no accuracy)
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('resnet170b', arg)
