r"""Seed A's "WideResNet18" row on CIFAR-10: the pre-activation bottleneck template 2,2,2,2 at 4x
width (stem 64, outputs 256..2048), not a WRN (SPEC §1).

    python main.py --config configs/wideresnet18.py:cutout16,htd --workdir runs/wideresnet18

Counts: 11,182,410 params + 23,168 batch_stats = 11,205,578 (seed A's figure), 609.96M FLOPs/2.
Seed A's row says "+Cutout" without a size; its only Cutout is 16x16.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`): mish, htd, cosine,
cutout16, mixup0.2, mixup1, cutmix.

Seed A's rows, CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/wideresnet18.py:cutout16,htd  94.91%
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('wideresnet18', arg)
