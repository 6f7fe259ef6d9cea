r"""Seed A's MobileNetV2 on CIFAR-10: the ImageNet network (width 1.0) on inputs upsampled by
nearest-neighbour repetition, x3 to 96 px or x6 to 192 px (SPEC §5).

    python main.py --config configs/mobilenetv2.py:96px,htd,cutmix --workdir runs/mobilenetv2

Counts (seed A gives none): 2,236,682 params + 34,112 batch_stats = 2,270,794 (the 2021
README's "2.3M"); 55.02M FLOPs/2 at 96 px, 220.05M at 192 px.

Variants (comma-separated; recipe in `configs/seed_a.py`): 96px (the default) or 192px, and
seed A's row tags htd, cosine, cutout16, mixup0.2, mixup1, cutmix (no mish: MobileNetV2 keeps
its ReLU6, and no sd). MobileNetV2's L2 is
Keras `l2(4e-5)` (`weight_decay=8e-5`) on the block convs only: the model names its stem and head
convs `*_no_l2`, so `weight_decay_on='conv_kernels'` leaves them out, as it does the Dense head.

Seed A's rows, CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/mobilenetv2.py:96px,htd,cutmix   95.17%
    configs/mobilenetv2.py:192px,htd,cutmix  – (seed A's 192 px results are not in the seed table)
"""

from configs import seed_a

_UPSAMPLE = {'96px': 3, '192px': 6}


def get_config(arg=None):
  resolutions = seed_a.resolution_variants(arg, _UPSAMPLE, 'configs/mobilenetv2.py')
  config = seed_a.recipe('mobilenetv2', arg, model_fields={'upsample': 3}, exclude=('mish',),
                         extra_variants=resolutions)
  config.optim.weight_decay = 8e-5
  return config
