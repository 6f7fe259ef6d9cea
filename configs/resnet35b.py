r"""Seed A's ResNet35b rows on CIFAR-10: pre-activation bottleneck units 2,3,4,2 (SPEC §1).

    python main.py --config configs/resnet35b.py:htd,cutmix --workdir runs/resnet35b

Counts: 866,010 params + 7,712 batch_stats = 873,722 (seed A's figure), 51.83M FLOPs/2 (seed A
quotes 52.23M for +Mish: its profiler's activation bookkeeping, SPEC §0).

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`): mish, htd, cosine,
cutout16, mixup0.2, mixup1, cutmix. No sd: seed A's SD code (2020) gives p_L only for 50/101/152.

Seed A's rows, CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/resnet35b.py             92.83%
    configs/resnet35b.py:mish        93.50%
    configs/resnet35b.py:htd,cutmix  95.06%
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('resnet35b', arg)
