r"""ResNeSt-50d (Zhang et al. 2020; timm `resnest50d`) on CIFAR-10 with seed A's recipe: split
attention (radix 2, cardinality 1), average-pool downsampling in the block, deep stem at stride
1 and no max-pool (the CIFAR form, `jaxcls/models/resnest.py`).

    python main.py --config configs/resnest50d.py:cutmix --workdir runs/resnest50d

Counts: 25,454,730 params + 64,576 batch_stats, 1,666.88M MACs at 32x32. The ImageNet form
(`--config.model.stem=imagenet`, 224 px, 1000 classes) has timm's 27,483,240 params.

Variants (comma-separated; recipe in `configs/seed_a.py`): htd, cosine, cutout16, mixup0.2,
mixup1, cutmix (no mish: the paper's ReLU is fixed; no sd).

No published CIFAR row: seed A listed ResNeSt as planned and never ran it, and the paper reports
ImageNet and transfer results only.
"""

from configs import seed_a


def get_config(arg=None):
  return seed_a.recipe('resnest50d', arg, exclude=('mish',), model_fields=dict(
      stem='cifar', stage_sizes=(3, 4, 6, 3), base_width=64, stem_width=32, radix=2))
