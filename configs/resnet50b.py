r"""Seed A's ResNet50b rows on CIFAR-10: pre-activation bottleneck units 3,4,6,3 (SPEC §1).

    python main.py --config configs/resnet50b.py:sd,htd,cutmix --workdir runs/resnet50b

Counts: 1,309,210 params (seed A quotes trainable only for this row) + 11,360 batch_stats,
74.11M FLOPs/2 (seed A quotes 74.77M for +Mish rows, SPEC §0).

Variants (seed A's row tags, comma-separated; recipe in `configs/seed_a.py`): sd (p_L = 0.7),
mish, htd, cosine, cutout16, mixup0.2, mixup1, cutmix. With the recipe's cosine default,
`sd,mish` and `sd,cosine,mish` are the same run (see `configs/seed_a.py`).

Seed A's rows, CIFAR-10 top-1 (ours: not measured yet, a full row needs a GPU):
    configs/resnet50b.py                       93.18%
    configs/resnet50b.py:mish                  93.94%
    configs/resnet50b.py:htd                   93.65%
    configs/resnet50b.py:sd                    94.05%
    configs/resnet50b.py:sd,mish               94.42%
    configs/resnet50b.py:sd,htd,mish           94.50%
    configs/resnet50b.py:sd,cosine,mish        94.69%
    configs/resnet50b.py:sd,htd,cutout16       94.96%
    configs/resnet50b.py:sd,htd,mixup0.2       95.42%
    configs/resnet50b.py:sd,htd,mixup1         95.48%
    configs/resnet50b.py:sd,htd,cutmix         95.56%
    configs/resnet50b.py:sd,mish,htd,cutout16  95.37%

On one H200 the whole run takes about 0.1 h (6 minutes) at the config's dtype
(`expected_gpu_hours`: estimated from FLOPs in docs/GPU.md until measured).
"""

from configs import seed_a


def get_config(arg=None):
  config = seed_a.recipe('resnet50b', arg, sd_survival=0.7)
  config.expected_gpu_hours = 0.1  # one H200, from FLOPs (docs/GPU.md) until measured
  return config
