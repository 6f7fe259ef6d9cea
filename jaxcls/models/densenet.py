"""DenseNet-BC (Huang et al. 2017, "Densely Connected Convolutional Networks") for CIFAR-size
inputs: SPEC section 4 (seed A, Keras) and section 6.2 (seed B, PyTorch, 1-channel 28x28).

Easy to get wrong:
- "BC" means both bottleneck layers (BN-act-conv 1x1 to 4k, then BN-act-conv 3x3 to k) and
  compression: transitions are BN-act-conv 1x1 to floor(0.5 C) then AvgPool 2x2/2.
- The stem is a bare 3x3 conv to 2k channels (no BN/act), there are three dense blocks of
  (depth - 4) / 6 layers each, and the head is BN -> act -> GAP -> Dense. No dropout.
- Seed A's `DenseNet160k12` helper passes depth 100 by mistake; `densenet160k12` is the true 160.

`convention` picks the framework of the seed: 'keras' (seed A: glorot-uniform, BN 0.99 / 1e-3,
new features concatenated first) or 'torch' (seed B: kaiming-normal fan_out, BN momentum 0.1 i.e.
flax 0.9, eps 1e-5, new features last). Counts and MACs do not depend on it.
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


class DenseLayer(nn.Module):
  """BN-act-conv 1x1 (4k) -> BN-act-conv 3x3 (k), concatenated with the input."""
  growth_rate: int
  conv: ModuleDef
  norm: ModuleDef
  act: Any
  new_features_first: bool

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    unit = dict(conv=self.conv, norm=self.norm, act=self.act)
    y = layers.PreActConv(4 * self.growth_rate, (1, 1), **unit)(x)
    y = layers.PreActConv(self.growth_rate, (3, 3), **unit)(y)
    return jnp.concatenate([y, x] if self.new_features_first else [x, y], axis=-1)


class Transition(nn.Module):
  """BN-act-conv 1x1 to floor(reduction * C), then AvgPool 2x2/2 (floor, as Keras and torch)."""
  reduction: float
  conv: ModuleDef
  norm: ModuleDef
  act: Any

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    features = int(self.reduction * x.shape[-1])
    x = layers.PreActConv(features, (1, 1), conv=self.conv, norm=self.norm, act=self.act)(x)
    return nn.avg_pool(x, (2, 2), (2, 2))


class DenseNet(nn.Module):
  """DenseNet-BC with three dense blocks.

  Attributes:
    num_classes: outputs of the final Dense.
    depth: L; each block has (L - 4) / 6 bottleneck layers.
    growth_rate: k, the channels each layer adds.
    reduction: compression of the transitions (0.5 in "BC").
    stem_width: channels of the stem conv; None means 2k.
    activation: relu | mish | swish.
    convention: keras (seed A) | torch (seed B); see the module docstring.
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  depth: int = 100
  growth_rate: int = 12
  reduction: float = 0.5
  stem_width: int | None = None
  activation: str = 'relu'
  convention: str = 'keras'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.depth < 10 or (self.depth - 4) % 6:
      raise UserError(f'model.depth: DenseNet-BC needs depth = 6n + 4 with n >= 1, '
                      f'got {self.depth}')
    num_layers = (self.depth - 4) // 6
    conv = layers.conv_def(self.convention, self.dtype)
    norm = layers.norm_def(self.convention, self.dtype, train)
    act = layers.activation(self.activation)
    unit = dict(conv=conv, norm=norm, act=act)
    stem_width = 2 * self.growth_rate if self.stem_width is None else self.stem_width

    x = conv(stem_width, (3, 3), name='stem')(x.astype(self.dtype))
    dense_layer = functools.partial(DenseLayer, self.growth_rate,
                                    new_features_first=self.convention == 'keras', **unit)
    for b in range(3):
      if b:
        x = Transition(self.reduction, name=f'transition{b}', **unit)(x)
      for i in range(num_layers):
        x = dense_layer(name=f'block{b + 1}_layer{i + 1}')(x)

    x = act(norm(name='head_norm')(x))
    x = jnp.mean(x, axis=(1, 2))
    dense = layers.dense_def(self.convention, self.dtype)
    return dense(self.num_classes, name='head')(x).astype(jnp.float32)


@register_model
def densenet100k12() -> DenseNet:
  """16 layers per block, k=12: 769,162 params (768,730 on seed B's 1-channel input)."""
  return DenseNet(depth=100, growth_rate=12)


@register_model
def densenet100k16() -> DenseNet:
  """16 layers per block, k=16: 1,354,922 params."""
  return DenseNet(depth=100, growth_rate=16)


@register_model
def densenet160k12() -> DenseNet:
  """26 layers per block, k=12: 1,739,002 params (the true L=160, not seed A's helper)."""
  return DenseNet(depth=160, growth_rate=12)


@register_model
def densenet250k12() -> DenseNet:
  """41 layers per block, k=12: 3,900,262 params."""
  return DenseNet(depth=250, growth_rate=12)


@register_model
def densenet250k24() -> DenseNet:
  """41 layers per block, k=24: the paper's 15.3M (15,324,406 params)."""
  return DenseNet(depth=250, growth_rate=24)


@register_model
def densenet190k40() -> DenseNet:
  """31 layers per block, k=40: the paper's 25.6M (25,624,430 params)."""
  return DenseNet(depth=190, growth_rate=40)
