r"""Seed A's later TResNet-M rows on CIFAR-10 (MoonArchitect/tensorflow-CNNs, 2021 README):
TResNet-M (Ridnik et al. 2021) with BN + leaky ReLU, on inputs upsampled by nearest-neighbour
repetition (x2 to x6: 64 to 192 px), then SpaceToDepth; stage widths 64-512 (the CIFAR form of
`jaxcls/models/tresnet.py`).

    python main.py --config configs/tresnet_m.py:96px,cutmix --workdir runs/tresnet_m

Counts: 3,162,130 params + 17,792 batch_stats = 3,179,922 (the README's "3.2 M"); 382.46M MACs
at 96 px. The ImageNet form (`--config.model.stem=imagenet --config.model.upsample=1`, 224 px,
1000 classes) has timm's 31,389,032 params.

Variants (comma-separated; recipe in `configs/seed_a.py`, which is the 2021 README's: 150
epochs, batch 1024, SGD Nesterov 0.9, cosine 0.5 -> 0.001 after 10 warm-up epochs, flip, 4-px
shift, CutMix): 64px, 96px (the default), 128px, 160px or 192px, and htd, cosine, cutout16,
mixup0.2, mixup1, cutmix (no mish, no sd). Seed A's `l2(1e-4)` covers the block convs only: the
model names its stem and shortcut convs `*_no_l2`, and the SE layers are Dense.

Seed A's later rows, CIFAR-10 top-1 (RTX 3090, FP16; ours: not measured yet, needs a GPU):
    configs/tresnet_m.py:64px,cutmix   92.51%
    configs/tresnet_m.py:96px,cutmix   95.03%
    configs/tresnet_m.py:128px,cutmix  95.84%
    configs/tresnet_m.py:160px,cutmix  95.84%
    configs/tresnet_m.py:192px,cutmix  95.89%
"""

from configs import seed_a


def get_config(arg=None):
  resolutions = seed_a.resolution_variants(
      arg, {'64px': 2, '96px': 3, '128px': 4, '160px': 5, '192px': 6}, 'configs/tresnet_m.py')
  return seed_a.recipe(
      'tresnet_m', arg, exclude=('mish',), extra_variants=resolutions,
      model_fields=dict(stem='cifar', upsample=3, stage_sizes=(3, 4, 11, 3), width_factor=1.0))
