r"""MobileNetV3 Large and Small (Howard et al. 2019) on CIFAR-10 as seed A's later README runs
them (MoonArchitect/tensorflow-CNNs, 2021): the ImageNet network on the 32x32 input upsampled
by nearest-neighbour repetition to 128, 160, 192 or 224 px (jaxcls/models/mobilenet_v3.py).

    python main.py --config configs/mobilenetv3.py:large,192px,b512,cutmix --workdir runs/mnv3l
    python main.py --config configs/mobilenetv3.py:small,224px,cutmix --workdir runs/mnv3s

Counts (CIFAR form, 10 classes): Large 4,214,842 params + 24,400 batch_stats, 215.32M MACs at
224 px; Small 1,528,106 + 12,112, 55.50M MACs at 224 px. With 1000 classes at 224x224 they are
timm's and torchvision's 5,483,032 and 2,542,856 params exactly (docs/ZOO.md).

Variants (comma-separated; recipe in `configs/seed_a.py`): large (default) or small; 128px,
160px, 192px or 224px (default 224px: `model.upsample` 4..7); w2 (width multiplier 2); b512
(batch 512, as seed A's rows marked b=512); and seed A's tags htd, cosine, cutout16, mixup0.2,
mixup1, cutmix. The recipe is seed A's 2021 one (150 epochs, batch 1024, SGD Nesterov,
cosine 0.5 -> 0.001 after 10 warm-up epochs, flip + 4-px shift), with seed A's MobileNetV3
L2, Keras `l2(1.2e-4)` (`weight_decay=2.4e-4`) on conv kernels: seed A's covered only its block
convs, here the stem and the 1x1 head conv carry it too (the SE and the pooled head are Dense
and carry none).

Seed A's rows, CIFAR-10 top-1, all with CutMix (ours: not measured yet, a row needs a GPU).
Seed A's network is NOT the paper's: it drops the 1280/1024-wide pooled head, uses Swish for
h-swish and gates SE with Swish (seed A's counts: Small 0.95M, Large 3.0M, with BN statistics);
the configs run the paper's network at seed A's resolutions and recipe.
    configs/mobilenetv3.py:small,128px,cutmix        93.72%
    configs/mobilenetv3.py:small,160px,cutmix        94.41%
    configs/mobilenetv3.py:small,192px,cutmix        94.86%
    configs/mobilenetv3.py:small,224px,cutmix        95.53%
    configs/mobilenetv3.py:small,192px,w2,cutmix     96.02%
    configs/mobilenetv3.py:small,224px,w2,cutmix     96.22% (b512: 96.30%)
    configs/mobilenetv3.py:large,128px,cutmix        95.57%
    configs/mobilenetv3.py:large,160px,cutmix        96.07%
    configs/mobilenetv3.py:large,192px,b512,cutmix   96.58%
    configs/mobilenetv3.py:large,224px,b512,cutmix   96.52%
    configs/mobilenetv3.py:large,192px,w2,b512,cutmix 96.95%
"""

from ml_collections import config_dict

from configs import seed_a

_FILE = 'configs/mobilenetv3.py'
_UPSAMPLE = {'128px': 4, '160px': 5, '192px': 6, '224px': 7}


def _batch_512(config):
  config.batch_size = 512


def get_config(arg=None):
  sizes = seed_a.exclusive_variants(arg, {
      'large': seed_a.setter(name='mobilenetv3_large'),
      'small': seed_a.setter(name='mobilenetv3_small')}, _FILE)
  variants = {**sizes, **seed_a.resolution_variants(arg, _UPSAMPLE, _FILE),
              'w2': seed_a.setter(width_mult=2.0), 'b512': _batch_512}
  fields = {'upsample': 7, 'width_mult': config_dict.placeholder(float),
            'drop_connect_rate': config_dict.placeholder(float),
            'dropout_rate': config_dict.placeholder(float)}
  config = seed_a.recipe('mobilenetv3_large', arg, config_file=_FILE, model_fields=fields,
                         exclude=('mish',), extra_variants=variants)
  config.optim.weight_decay = 2.4e-4
  return config
