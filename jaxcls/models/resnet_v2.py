"""Pre-activation ResNet (He et al. 2016, "Identity Mappings in Deep Residual Networks") as seed
A (MoonArchitect/tensorflow-CNNs, 2020) builds it for CIFAR: SPEC section 1.

Easy to get wrong:
- The stem is a bare 3x3 conv to 16 channels, with NO BN/act after it: each unit starts with its
  own BN-act, and the head is BN -> act -> GAP -> Dense.
- Shortcuts have no parameters: AvgPool 2x2/2 when strided, then a symmetric zero-pad of the
  channels, both on the RAW unit input. In a bottleneck the stride sits on the 3x3, and the
  published "WideResNet18" is this bottleneck template at 4x width (stem 64), not a WRN.

The same module, with `expansion`, `cardinality` and `se_reduction`, is also seed A's ResNeXt
(`resnext.py`) and SE-Net (`senet.py`), and with `ibn_stages` IBN-Net's IBN-a (`ibn.py`).
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.errors import UserError
from jaxcls.models import layers
from jaxcls.models.registry import register_model

ModuleDef = Any


class BasicUnit(nn.Module):
  """PreActConv 3x3 (stride s) -> PreActConv 3x3, plus the zero-pad shortcut.

  `mid_norm` (default `norm`) is the norm after the first conv, i.e. the second PreActConv's.
  """
  features: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  act: Any
  drop_path: ModuleDef
  mid_norm: ModuleDef | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    unit = dict(conv=self.conv, norm=self.norm, act=self.act)
    mid = dict(unit, norm=self.mid_norm or self.norm)
    y = layers.PreActConv(self.features, (3, 3), self.strides, **unit)(x)
    y = layers.PreActConv(self.features, (3, 3), **mid)(y)
    shortcut = layers.pad_shortcut(x, self.features, self.strides)
    return self.drop_path()(shortcut, y, train)


class BottleneckUnit(nn.Module):
  """PreActConv 1x1 -> PreActConv 3x3 (stride s, grouped) -> PreActConv 1x1 [-> SE], plus the
  zero-pad shortcut. `features` is the inner width; the unit outputs `expansion * features`.

  `mid_norm` (default `norm`) is the norm after the first 1x1 conv, i.e. the 3x3 PreActConv's.
  """
  features: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  act: Any
  drop_path: ModuleDef
  expansion: int = 4
  cardinality: int = 1
  se: ModuleDef | None = None
  mid_norm: ModuleDef | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    unit = dict(conv=self.conv, norm=self.norm, act=self.act)
    mid = dict(unit, norm=self.mid_norm or self.norm)
    out_features = self.features * self.expansion
    y = layers.PreActConv(self.features, (1, 1), **unit)(x)
    y = layers.PreActConv(self.features, (3, 3), self.strides,
                          feature_group_count=self.cardinality, **mid)(y)
    y = layers.PreActConv(out_features, (1, 1), **unit)(y)
    if self.se is not None:
      y = self.se()(y)
    shortcut = layers.pad_shortcut(x, out_features, self.strides)
    return self.drop_path()(shortcut, y, train)


class ResNetV2(nn.Module):
  """Seed A's pre-activation ResNet; also ResNeXt (cardinality) and SE-Net (se_reduction).

  Attributes:
    num_classes: outputs of the final Dense.
    stage_sizes: units per stage; stage i has inner width base_width * 2**i, stride 2 from i=1.
    bottleneck: bottleneck units (1x1-3x3-1x1, output expansion * width) instead of basic ones.
    base_width: width of the first stage (inner width for bottlenecks).
    stem_width: channels of the stem conv; None means base_width.
    expansion: bottleneck output / inner width (4 for ResNet, 2 for seed A's ResNeXt).
    cardinality: groups of the bottleneck 3x3 (ResNeXt).
    se_reduction: squeeze-and-excitation reduction r on the branch; 0 means no SE.
    ibn_stages: IBN-a (Pan et al. 2018) in the units of the first `ibn_stages` stages: the norm
      after each unit's first conv becomes half InstanceNorm, half BN (`ibn.py`); 0: none.
    activation: relu | mish | swish, used everywhere (units and head).
    survival_prob: stochastic depth p_L of the last unit; 1.0 disables it.
    drop_path_mode: batch (seed A: one draw per batch) | sample (timm drop_path).
    convention: keras (seed A inits, BN 0.99 / 1e-3) | torch (kaiming fan_out, BN 0.9 / 1e-5).
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  stage_sizes: tuple[int, ...] = (2, 2, 2, 2)
  bottleneck: bool = False
  base_width: int = 16
  stem_width: int | None = None
  expansion: int = 4
  cardinality: int = 1
  se_reduction: int = 0
  ibn_stages: int = 0
  activation: str = 'relu'
  survival_prob: float = 1.0
  drop_path_mode: str = 'batch'
  convention: str = 'keras'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    conv = layers.conv_def(self.convention, self.dtype)
    dense = layers.dense_def(self.convention, self.dtype)
    norm = layers.norm_def(self.convention, self.dtype, train)
    act = layers.activation(self.activation)
    layers.check_choice('drop_path_mode', self.drop_path_mode)
    stem_width = self.base_width if self.stem_width is None else self.stem_width
    first_out = self.base_width * (self.expansion if self.bottleneck else 1)
    if stem_width > first_out:
      raise UserError(f'model.stem_width: {stem_width} exceeds the first stage width '
                      f'{first_out}; the zero-pad shortcut can only widen')

    x = conv(stem_width, (3, 3), name='stem')(x.astype(self.dtype))
    se = None
    if self.se_reduction:
      se = functools.partial(layers.SqueezeExcite, self.se_reduction, dense=dense, act=act)
    ibn = layers.ibn_def(self.convention, self.dtype, train)
    probs = iter(layers.survival_probs(sum(self.stage_sizes), self.survival_prob))
    for i, num_units in enumerate(self.stage_sizes):
      for j in range(num_units):
        unit = dict(
            features=self.base_width * 2**i, strides=2 if i > 0 and j == 0 else 1,
            conv=conv, norm=norm, act=act, name=f'stage{i + 1}_unit{j + 1}',
            mid_norm=ibn if i < self.ibn_stages else None,
            drop_path=functools.partial(layers.StochasticDepth, next(probs),
                                        self.drop_path_mode))
        if self.bottleneck:
          x = BottleneckUnit(expansion=self.expansion, cardinality=self.cardinality, se=se,
                             **unit)(x, train)
        else:
          x = BasicUnit(**unit)(x, train)

    x = act(norm(name='head_norm')(x))
    x = jnp.mean(x, axis=(1, 2))
    return dense(self.num_classes, name='head')(x).astype(jnp.float32)



@register_model
def resnet18() -> ResNetV2:
  """Basic units 2,2,2,2 (not in the seed table): 690,266 params + 1,952 batch_stats."""
  return ResNetV2(stage_sizes=(2, 2, 2, 2))


@register_model
def resnet34() -> ResNetV2:
  """Basic units 3,4,6,3: seed A's 1,327,226 (params + batch_stats), 72.40M MACs."""
  return ResNetV2(stage_sizes=(3, 4, 6, 3))


@register_model
def resnet35b() -> ResNetV2:
  """Bottleneck units 2,3,4,2: 873,722 total, 51.83M MACs."""
  return ResNetV2(stage_sizes=(2, 3, 4, 2), bottleneck=True)


@register_model
def resnet50b() -> ResNetV2:
  """Bottleneck units 3,4,6,3: 1,309,210 params (seed A quotes trainable only here), 74.11M."""
  return ResNetV2(stage_sizes=(3, 4, 6, 3), bottleneck=True)


@register_model
def resnet101b() -> ResNetV2:
  """Bottleneck units 3,4,23,3: 2,530,426 total, 149.87M MACs."""
  return ResNetV2(stage_sizes=(3, 4, 23, 3), bottleneck=True)


@register_model
def resnet152b() -> ResNetV2:
  """Bottleneck units 3,8,36,3: 3,528,314 total, 225.63M MACs."""
  return ResNetV2(stage_sizes=(3, 8, 36, 3), bottleneck=True)


@register_model
def resnet170b() -> ResNetV2:
  """Bottleneck units 4,10,36,6 (the only 56-unit split matching 4,414,202), 252.37M MACs."""
  return ResNetV2(stage_sizes=(4, 10, 36, 6), bottleneck=True)


@register_model
def wideresnet18() -> ResNetV2:
  """Seed A's "WideResNet18": the bottleneck template 2,2,2,2 at 4x width (stem 64, inner
  64..512, outputs 256..2048), 11,205,578 total, 609.96M MACs. Not a WRN."""
  return ResNetV2(stage_sizes=(2, 2, 2, 2), bottleneck=True, base_width=64)
