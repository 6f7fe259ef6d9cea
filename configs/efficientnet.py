r"""EfficientNet-B0..B7 (Tan & Le 2019) on CIFAR-10, the way seed A adapts ImageNet-layout
networks: the network unchanged, on the 32x32 input upsampled by nearest-neighbour repetition
to (about) the model's resolution, x(resolution // 32): B0 and B1 x7 = 224 px, B2 x8, B3 x9,
B4 x11, B5 x14, B6 x16, B7 x18 (jaxcls/models/efficientnet.py).

    python main.py --config configs/efficientnet.py:b0,cutmix --workdir runs/efficientnet_b0

Counts (CIFAR form, 10 classes): B0 4,020,358 params + 42,016 batch_stats, 384.55M MACs at
224 px. With 1000 classes at their ImageNet resolutions B0..B7 have timm's / torchvision's
parameter counts exactly (docs/ZOO.md).

Variants (comma-separated): b0 (default) .. b7, and seed A's tags htd, cosine, cutout16,
mixup0.2, mixup1, cutmix; the recipe is seed A's (`configs/seed_a.py`: 150 epochs, batch
1024, SGD Nesterov, cosine 0.5 -> 0.001 after 10 warm-up epochs, Keras `l2(1e-4)` on conv
kernels, flip + 4-px shift). The model brings its own regularisers: drop connect 0.2 (per
sample, rising over the blocks) and dropout 0.2..0.5 before the classifier
(`--config.model.drop_connect_rate`, `--config.model.dropout_rate`). No `sd` or `mish` tag:
drop connect is EfficientNet's stochastic depth, and its activation is Swish.

References: thin. No published row trains EfficientNet on CIFAR-10 from scratch with this
recipe (seed A lists EfficientNet as planned). The paper's CIFAR figures (Table 5) are
ImageNet-pretrained networks fine-tuned at their own resolution, not comparable with a
from-scratch run: B0 98.1% (CIFAR-10) / 88.1% (CIFAR-100), B7 98.9% / 91.7%.
    configs/efficientnet.py:b0,cutmix   – (ours: not measured yet, a row needs a GPU)
"""

from ml_collections import config_dict

from configs import seed_a

_FILE = 'configs/efficientnet.py'


def get_config(arg=None):
  sizes = seed_a.exclusive_variants(
      arg, {f'b{b}': seed_a.setter(name=f'efficientnet_b{b}') for b in range(8)}, _FILE)
  # None: the model's (the B's) own value; set, e.g. --config.model.upsample=2 for 64 px.
  fields = {'width_coefficient': config_dict.placeholder(float),
            'depth_coefficient': config_dict.placeholder(float),
            'drop_connect_rate': config_dict.placeholder(float),
            'dropout_rate': config_dict.placeholder(float),
            'upsample': config_dict.placeholder(int)}
  return seed_a.recipe('efficientnet_b0', arg, config_file=_FILE, model_fields=fields,
                       exclude=('mish',), extra_variants=sizes)
