"""ResNeXt (Xie et al. 2017, "Aggregated Residual Transformations") as seed A's 2020
`ResNeXtSD.py` builds it for CIFAR: SPEC section 2.

It is seed A's pre-activation bottleneck ResNet (`resnet_v2.ResNetV2`: avgpool + zero-pad
shortcuts, BN-act-conv order, BN-act-GAP-Dense head) with two changes that are easy to miss:
- the stem is a 3x3 conv to 32 channels, and the inner width is HALF the unit output
  (32/64/128/256 inside, 64/128/256/512 out), not a quarter;
- only the 3x3 is grouped, with cardinality 32 (1, 2, 4, 8 channels per group); the 1x1s are not.
The seed's +SD rows use p_L = 0.5 (`survival_prob`), which is a config matter.
"""

from jaxcls.models.registry import register_model
from jaxcls.models.resnet_v2 import ResNetV2


def _resnext_c32(stage_sizes: tuple[int, ...]) -> ResNetV2:
  return ResNetV2(stage_sizes=stage_sizes, bottleneck=True, base_width=32, stem_width=32,
                  expansion=2, cardinality=32)


@register_model
def resnext50_c32() -> ResNetV2:
  """Units 3,4,6,3: 1,280,010 params + 15,168 batch_stats, 77.96M MACs."""
  return _resnext_c32((3, 4, 6, 3))


@register_model
def resnext101_c32() -> ResNetV2:
  """Units 3,4,23,3: 2,489,866 params + 32,576 batch_stats, 154.28M MACs."""
  return _resnext_c32((3, 4, 23, 3))


@register_model
def resnext152_c32() -> ResNetV2:
  """Units 3,8,36,3 (the September 2020 rewrite's depth; no published row)."""
  return _resnext_c32((3, 8, 36, 3))
