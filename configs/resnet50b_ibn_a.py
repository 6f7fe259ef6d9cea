r"""IBN-Net's IBN-a (Pan et al. 2018) on seed A's ResNet50b (pre-activation bottleneck units
3,4,6,3, SPEC §1): the norm after each unit's first 1x1 conv in stages 1-3 is half
InstanceNorm, half BN (`jaxcls/models/ibn.py`).

    python main.py --config configs/resnet50b_ibn_a.py:sd,htd,cutmix --workdir runs/resnet50b_ibn_a

Counts: 1,309,210 params (ResNet50b's: IN's affine pair replaces BN's) + 10,800 batch_stats
(11,360 less the mean and variance of 280 IN channels), 74.11M MACs. The other depths are
`--config.model.name=resnet35b_ibn_a` and `resnet101b_ibn_a`; torchvision's ResNet-50-IBN-a
with a CIFAR stem (23,520,842 params) is `--config.model.name=resnet50_ibn_a`, and
`--config.model.ibn_stages=0` turns any of them back into its plain network.

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`): sd (p_L = 0.7, as
ResNet50b), mish, htd, cosine, cutout16, mixup0.2, mixup1, cutmix.

No published CIFAR row: the paper and the official code report ImageNet and re-identification
results only. Compare with seed A's ResNet50b rows (`configs/resnet50b.py`, 93.18% plain).
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('resnet50b_ibn_a', arg, sd_survival=0.7, model_fields=dict(ibn_stages=3))
