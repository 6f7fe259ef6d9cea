"""Wide Residual Networks (Zagoruyko & Komodakis 2016, "Wide Residual Networks") as seed B
(jungwon1413/pytorch_image_classification, after xternalz/WideResNet-pytorch) builds WRN-d-k:
SPEC section 6.1.

Easy to get wrong:
- A block whose width changes (the first of each stage, 16 -> 16k included) feeds the ACTIVATED
  input a = ReLU(BN(x)) to both its 3x3 conv and its 1x1 projection shortcut; a block that keeps
  its width adds the RAW input x. The stride sits on the first 3x3 and on the projection.
- Widths are 16k, 32k, 64k over three stages of (d - 4) / 6 blocks, after a 3x3 stem to 16
  channels with no BN/act; the head is BN -> ReLU -> GAP -> Linear. Dropout (0 in seed B) goes
  between the two 3x3 convs.
- The 3x3 convs pad 1 pixel on every side as PyTorch does: on a stride-2 even-sized input this
  samples other pixels than TF's SAME (0, 1) padding.

WRN-28-10 on Fashion-MNIST's 1-channel input has 36,478,906 parameters (36,479,194 on RGB).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.errors import UserError
from jaxcls.models import layers
from jaxcls.models.registry import register_model

ModuleDef = Any


class WideBasic(nn.Module):
  """BN-act-conv 3x3 (stride s) -> BN-act-[dropout]-conv 3x3, plus the identity or a 1x1
  projection of the activated input."""
  features: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  act: Any
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    a = self.act(self.norm()(x))
    y = self.conv(self.features, (3, 3), (self.strides, self.strides), padding=1)(a)
    y = self.act(self.norm()(y))
    if self.dropout_rate:
      y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
    y = self.conv(self.features, (3, 3), padding=1)(y)
    if x.shape[-1] == self.features and self.strides == 1:
      return x + y
    shortcut = self.conv(self.features, (1, 1), (self.strides, self.strides), name='shortcut')
    return shortcut(a) + y


class WideResNet(nn.Module):
  """WRN-depth-widen for CIFAR-size inputs.

  Attributes:
    num_classes: outputs of the final Linear.
    depth: d; each of the three stages has (d - 4) / 6 blocks.
    widen: k; the stages are 16k, 32k and 64k wide.
    dropout_rate: dropout between the two convs of a block (the 'dropout' rng stream).
    stem_width: channels of the stem conv (16 in the paper).
    activation: relu | mish | swish.
    convention: torch (seed B: kaiming fan_out, BN 0.9 / 1e-5) | keras.
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  depth: int = 28
  widen: int = 10
  dropout_rate: float = 0.0
  stem_width: int = 16
  activation: str = 'relu'
  convention: str = 'torch'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.depth < 10 or (self.depth - 4) % 6:
      raise UserError(f'model.depth: a WRN needs depth = 6n + 4 with n >= 1, got {self.depth}')
    layers.check_dropout_rate(self.dropout_rate)
    conv = layers.conv_def(self.convention, self.dtype)
    norm = layers.norm_def(self.convention, self.dtype, train)
    act = layers.activation(self.activation)
    num_blocks = (self.depth - 4) // 6

    x = conv(self.stem_width, (3, 3), name='stem')(x.astype(self.dtype))
    for i in range(3):
      for j in range(num_blocks):
        x = WideBasic(16 * self.widen * 2**i, 2 if i > 0 and j == 0 else 1, conv, norm, act,
                      self.dropout_rate, name=f'stage{i + 1}_block{j + 1}')(x, train)

    x = act(norm(name='head_norm')(x))
    x = jnp.mean(x, axis=(1, 2))
    dense = layers.dense_def(self.convention, self.dtype)
    return dense(self.num_classes, name='head')(x).astype(jnp.float32)


def wrn(depth: int, widen: int, **fields: Any) -> WideResNet:
  """WRN-depth-widen, e.g. `wrn(16, 8)`; `fields` set any other attribute."""
  return WideResNet(depth=depth, widen=widen, **fields)


@register_model
def wrn28_10() -> WideResNet:
  """WRN-28-10: 36,478,906 params on a 1-channel input (seed B), 36,479,194 on RGB."""
  return wrn(28, 10)
