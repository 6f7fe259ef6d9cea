"""SE-Net (Hu et al. 2018, "Squeeze-and-Excitation Networks") on seed A's pre-activation
bottleneck ResNet, as its 2021 `SeNet.py` builds it (no 2020 code survives): SPEC section 3.

Easy to get wrong:
- the SE module sits on the residual BRANCH, after the last 1x1 PreActConv and before the add
  (and before stochastic depth), never on the shortcut;
- its hidden width is make_divisible(C / 16, 8), i.e. 8, 8, 16, 32 for C = 64..512, with a bias
  on both Dense layers.
The 2021 code runs the 3x3 at stride 1 and downsamples with a fixed binomial blur; that changes
no count, and this port keeps the plain strided 3x3 of the other seed-A ResNets.
"""

from jaxcls.models.registry import register_model
from jaxcls.models.resnet_v2 import ResNetV2


def _senet(stage_sizes: tuple[int, ...]) -> ResNetV2:
  return ResNetV2(stage_sizes=stage_sizes, bottleneck=True, se_reduction=16)


@register_model
def senet35() -> ResNetV2:
  """Units 2,3,4,2: 975,234 params + 7,712 batch_stats."""
  return _senet((2, 3, 4, 2))


@register_model
def senet50() -> ResNetV2:
  """Units 3,4,6,3: 1,471,954 params + 11,360 batch_stats."""
  return _senet((3, 4, 6, 3))


@register_model
def senet101() -> ResNetV2:
  """Units 3,4,23,3: 2,812,642 params + 24,416 batch_stats."""
  return _senet((3, 4, 23, 3))


@register_model
def senet152() -> ResNetV2:
  """Units 3,8,36,3: 3,917,778 params + 35,936 batch_stats."""
  return _senet((3, 8, 36, 3))
