r"""Seed A's ResNet152b row on CIFAR-10: pre-activation bottleneck units 3,8,36,3 (SPEC §1).

    python main.py --config configs/resnet152b.py:sd --workdir runs/resnet152b

Counts: 3,492,378 params + 35,936 batch_stats = 3,528,314 (seed A's figure), 225.63M FLOPs/2.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`): sd (p_L = 0.35),
mish, htd, cosine, cutout16, mixup0.2, mixup1, cutmix.

Seed A's rows, CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/resnet152b.py:sd  95.06%
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('resnet152b', arg, sd_survival=0.35)
