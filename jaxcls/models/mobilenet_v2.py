"""MobileNetV2 (Sandler et al. 2018, "Inverted Residuals and Linear Bottlenecks") as seed A runs
it on CIFAR: the ImageNet network, unchanged, on inputs upsampled by nearest-neighbour repetition
(x3 for the 96 px row, x6 for 192 px): SPEC section 5.

Easy to get wrong:
- the stem conv (3x3/2 to 32) has no BN of its own; the first block (t=1, no expand conv) opens
  with BN + ReLU6 on its input instead. The projection 1x1 is linear (BN, no activation), and
  the residual add happens only when the block keeps both width and resolution.
- BN momentum is 0.999 inside the blocks but 0.99 in the head; epsilon is 1e-3 everywhere. The
  head conv is always 1280 wide; `width_mult` scales only the block outputs, with no rounding.
- Seed A's L2 (4e-5) covers only the block convs (expand, depthwise, project). The stem and head
  convs are named with `layers.NO_L2_SUFFIX` (`stem_no_l2`, `head_conv_no_l2`) so that
  `weight_decay_mask(params, 'conv_kernels')` leaves them out, as it does the Dense head.
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

# (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2.
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))


class InvertedResidual(nn.Module):
  """[1x1 expand -> BN -> ReLU6] -> 3x3 depthwise (stride s) -> BN -> ReLU6 -> 1x1 project -> BN.

  Without an expand conv (t = 1) the block starts with BN -> ReLU6 on its input.
  """
  expansion: int
  features: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    in_features = x.shape[-1]
    hidden = in_features * self.expansion
    if self.expansion == 1:
      y = jax.nn.relu6(self.norm(name='input_norm')(x))
    else:
      y = self.conv(hidden, (1, 1), name='expand')(x)
      y = jax.nn.relu6(self.norm(name='expand_norm')(y))
    y = self.conv(hidden, (3, 3), (self.strides, self.strides), feature_group_count=hidden,
                  name='depthwise')(y)
    y = jax.nn.relu6(self.norm(name='depthwise_norm')(y))
    y = self.conv(self.features, (1, 1), name='project')(y)
    y = self.norm(name='project_norm')(y)
    if self.strides == 1 and in_features == self.features:
      y = x + y
    return y


class MobileNetV2(nn.Module):
  """MobileNetV2 on nearest-neighbour-upsampled inputs.

  Attributes:
    num_classes: outputs of the final Dense.
    width_mult: scales the block outputs (int(c * width_mult)); stem 32 and head 1280 are fixed.
    upsample: integer factor of the nearest-neighbour repeat of the input (3: 32 -> 96 px).
    blocks: the (t, c, n, s) rows; the paper's by default.
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  width_mult: float = 1.0
  upsample: int = 3
  blocks: tuple[tuple[int, int, int, int], ...] = BLOCKS
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if any(len(row) != 4 or row[3] not in (1, 2) for row in self.blocks):
      raise UserError(f'model.blocks: every row is (t, c, n, s) with stride s = 1 or 2, got '
                      f'{self.blocks!r}')
    conv = layers.conv_def('keras', self.dtype)
    norm = functools.partial(layers.norm_def('keras', self.dtype, train), momentum=0.999)
    head_norm = layers.norm_def('keras', self.dtype, train)

    x = layers.upsample_nearest(x.astype(self.dtype), self.upsample)
    x = conv(32, (3, 3), (2, 2), name='stem' + layers.NO_L2_SUFFIX)(x)
    for i, (t, c, n, s) in enumerate(self.blocks):
      for j in range(n):
        x = InvertedResidual(t, int(c * self.width_mult), s if j == 0 else 1, conv, norm,
                             name=f'stage{i + 1}_unit{j + 1}')(x)
    x = conv(1280, (1, 1), name='head_conv' + layers.NO_L2_SUFFIX)(x)
    x = jax.nn.relu6(head_norm(name='head_norm')(x))
    x = jnp.mean(x, axis=(1, 2))
    dense = layers.dense_def('keras', self.dtype)
    return dense(self.num_classes, name='head')(x).astype(jnp.float32)


@register_model
def mobilenetv2() -> MobileNetV2:
  """Width 1.0 at 96 px (upsample 3): 2,236,682 params + 34,112 batch_stats, 55.02M MACs
  (220.05M with upsample=6, the 192 px row)."""
  return MobileNetV2()
