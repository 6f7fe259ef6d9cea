r"""Seed A's ResNet50b rows on CIFAR-10 (1,309,210 params, 74.11M FLOPs/2).

    python main.py --config configs/resnet50b.py:sd,htd,cutmix --workdir runs/r50b

Variants (the seed's row tags, comma-separated): sd (p_L = 0.7), mish, htd, cosine, cutout16,
mixup0.2, mixup1, cutmix. Seed A's reported top-1: plain 93.18%, +Mish 93.94%, +HTD 93.65%,
+SD 94.05%, +SD+HTD+Cutout16 94.96%, +SD+HTD+Mixup0.2 95.42%, +SD+HTD+Mixup1 95.48%,
+SD+HTD+CutMix 95.56%. Recipe: `configs/seed_a.py`. Ours: not yet measured (needs a GPU).
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('resnet50b', arg, sd_survival=0.7)
