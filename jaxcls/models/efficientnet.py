"""EfficientNet (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks"): the B0 baseline of Table 1 and its compound scaling to B1..B7 (§3.3, the reference
code's width, depth and resolution coefficients).

Two forms (`stem`):
- 'imagenet': the paper's network, taking its input as it comes (224x224x3 for B0). With 1000
  classes B0 has exactly timm's and torchvision's 5,288,548 params and 42,016 BN statistics.
- 'cifar' (default): seed A's adaptation of ImageNet-layout networks (SPEC §5, §11): the same
  network on the 32x32 input upsampled by nearest-neighbour repetition, `upsample` = the
  resolution // 32 (B0: x7 = 224 px; B1 x7, B2 x8, ... B7 x18), as seed A rounded.

Easy to get wrong:
- the blocks are MBConv with SE and Swish (jaxcls/models/mbconv.py); the SE hidden width is
  max(1, int(0.25 * the block's INPUT width)), not of the expanded width, and the SE runs
  Swish inside (then a sigmoid gate), not ReLU;
- widths scale as make_divisible(c * width, 8) (never below 90% of c * width), stem and head
  (1280) included; each stage's repeats become ceil(n * depth);
- drop connect (0.2 for every B) rises linearly over ALL blocks from 0 at the first,
  rate * i / N for block i = 0..N-1, per sample with the 1/p scaling (timm, the TF code);
  dropout (0.2 .. 0.5 by B) sits before the classifier;
- BN momentum 0.99 and epsilon 1e-3 as TF's reference code (timm's PyTorch-trained
  `efficientnet_b0` uses PyTorch's 0.1 / 1e-5); convs N(0, 2/fan_out), TF's 'SAME' padding.
"""

import math
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.models import layers, mbconv
from jaxcls.models.registry import register_model

# B0 (Table 1): (expand ratio, kernel, stride of the first block, output channels, repeats).
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM_WIDTH = 32
HEAD_WIDTH = 1280
SE_RATIO = 0.25


def scaled_table(stages: tuple[tuple[int, int, int, int, int], ...], width: float,
                 depth: float) -> tuple[int, list[mbconv.Block]]:
  """(stem width, the MBConv table) of `stages` scaled by the width and depth coefficients."""
  in_features = layers.make_divisible(STEM_WIDTH * width)
  stem_width = in_features
  table = []
  for expand, kernel, stride, channels, repeats in stages:
    features = layers.make_divisible(channels * width)
    for j in range(math.ceil(repeats * depth)):
      table.append(mbconv.Block(
          kernel_size=kernel, hidden=in_features * expand, features=features,
          strides=stride if j == 0 else 1, se_features=max(1, int(in_features * SE_RATIO)),
          act='swish'))
      in_features = features
  return stem_width, table


class EfficientNet(mbconv.MBConvNet):
  """EfficientNet-B0 scaled by (width, depth); the input resolution is the caller's.

  Attributes (and `mbconv.MBConvNet`'s):
    width_coefficient, depth_coefficient: the compound-scaling multipliers (B0: 1.0, 1.0).
    stages: the B0 rows (expand, kernel, stride, channels, repeats) before scaling.
  """
  width_coefficient: float = 1.0
  depth_coefficient: float = 1.0
  stages: tuple[tuple[int, int, int, int, int], ...] = STAGES
  drop_connect_rate: float = 0.2

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    defs = mbconv.tf_reference_defs(self.dtype, train)
    stem_width, table = scaled_table(self.stages, self.width_coefficient,
                                     self.depth_coefficient)
    x = self.features(x, table, stem_width, 'swish', defs, train, se_act=jax.nn.swish,
                      se_gate=jax.nn.sigmoid)
    x = defs.conv(layers.make_divisible(HEAD_WIDTH * self.width_coefficient), (1, 1),
                  name='head_conv')(x)
    x = jax.nn.swish(defs.norm(name='head_norm')(x))
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return defs.classifier(self.num_classes, name='head')(x).astype(jnp.float32)


# (width, depth, resolution, dropout) of B0..B7: the reference code's `efficientnet_params`.
COEFFICIENTS = {
    'b0': (1.0, 1.0, 224, 0.2), 'b1': (1.0, 1.1, 240, 0.2), 'b2': (1.1, 1.2, 260, 0.3),
    'b3': (1.2, 1.4, 300, 0.3), 'b4': (1.4, 1.8, 380, 0.4), 'b5': (1.6, 2.2, 456, 0.4),
    'b6': (1.8, 2.6, 528, 0.5), 'b7': (2.0, 3.1, 600, 0.5),
}


def _efficientnet(variant: str) -> EfficientNet:
  width, depth, resolution, dropout = COEFFICIENTS[variant]
  return EfficientNet(width_coefficient=width, depth_coefficient=depth, dropout_rate=dropout,
                      upsample=resolution // 32)


@register_model
def efficientnet_b0() -> EfficientNet:
  """B0 at 224 px: 5,288,548 params + 42,016 batch_stats with 1000 classes (timm,
  torchvision), 4,020,358 params with 10."""
  return _efficientnet('b0')


@register_model
def efficientnet_b1() -> EfficientNet:
  """Width 1.0, depth 1.1, 240 px (CIFAR form: x7 = 224 px)."""
  return _efficientnet('b1')


@register_model
def efficientnet_b2() -> EfficientNet:
  """Width 1.1, depth 1.2, 260 px (CIFAR form: x8 = 256 px)."""
  return _efficientnet('b2')


@register_model
def efficientnet_b3() -> EfficientNet:
  """Width 1.2, depth 1.4, 300 px (CIFAR form: x9 = 288 px)."""
  return _efficientnet('b3')


@register_model
def efficientnet_b4() -> EfficientNet:
  """Width 1.4, depth 1.8, 380 px (CIFAR form: x11 = 352 px)."""
  return _efficientnet('b4')


@register_model
def efficientnet_b5() -> EfficientNet:
  """Width 1.6, depth 2.2, 456 px (CIFAR form: x14 = 448 px)."""
  return _efficientnet('b5')


@register_model
def efficientnet_b6() -> EfficientNet:
  """Width 1.8, depth 2.6, 528 px (CIFAR form: x16 = 512 px)."""
  return _efficientnet('b6')


@register_model
def efficientnet_b7() -> EfficientNet:
  """Width 2.0, depth 3.1, 600 px (CIFAR form: x18 = 576 px)."""
  return _efficientnet('b7')
