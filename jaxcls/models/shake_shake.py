"""Shake-Shake regularisation (Gastaldi 2017, arXiv:1705.07485) on the 26-layer 2-branch ResNet,
as hysts/pytorch_image_classification builds it (the code behind seed B's Shake-Shake rows,
whose notebooks are missing): SPEC sections 6.4 and 9.

Easy to get wrong:
- While training, the two branches are mixed as a*b1 + (1 - a)*b2 with a ~ U(0, 1) drawn per
  IMAGE (level 'image'), and the backward pass uses an INDEPENDENT b ~ U(0, 1) in place of a
  (`layers.shake`, a custom VJP). At inference a = 0.5, with no randomness. Draws come from the
  'shake' rng stream. `shake_mode` names the paper's other choices, forward-backward: 'even'
  is 0.5, 'keep' reuses the forward coefficient (shake-keep, shake-even, even-shake,
  even-even), and `shake_level='batch'` draws one coefficient for the whole batch.
- Each branch is ReLU -> conv 3x3 (stride) -> BN -> ReLU -> conv 3x3 -> BN: it opens with a
  ReLU and ends with BN, and the block adds the shortcut with no activation after it.
- The stem is conv 3x3 to the BASE width (not 16) -> BN -> ReLU, so the first stage keeps its
  width and only the first blocks of stages 2 and 3 (stride 2, width doubled) need a shortcut:
  ReLU, then two 1x1 convs (in -> in) on the input subsampled at even and at odd offsets
  (the second path shifted by one pixel, zero-padded at the far edge), concatenated, then BN.
- The head is GAP -> Linear, with no final BN or ReLU. 3x3 convs pad 1 pixel on every side as
  PyTorch does.

Shake-Shake-26 2x96d has 26,330,026 parameters on Fashion-MNIST's 1-channel input; 2x64d has
11,708,362.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.errors import UserError
from jaxcls.models import layers
from jaxcls.models.registry import register_model

ModuleDef = Any


class ShakeCombine(nn.Module):
  """Mixes two branches: shake(b1, a, b) + shake(b2, 1 - a, 1 - b) in training, the mean in eval.

  The coefficients broadcast over (H, W, C): one per image, or one per batch at level 'batch'.
  """
  mode: str = 'shake-shake'
  level: str = 'image'

  @nn.compact
  def __call__(self, b1: jax.Array, b2: jax.Array, train: bool) -> jax.Array:
    forward, backward = layers.check_choice('shake_mode', self.mode).split('-')
    layers.check_choice('shake_level', self.level)
    if not train or self.mode == 'even-even':
      return b1 * 0.5 + b2 * 0.5
    shape = (b1.shape[0] if self.level == 'image' else 1,) + (1,) * (b1.ndim - 1)
    half = jnp.full(shape, 0.5, jnp.float32)
    alpha_key, beta_key = jax.random.split(self.make_rng('shake'))
    alpha = jax.random.uniform(alpha_key, shape) if forward == 'shake' else half
    if backward == 'shake':
      beta = jax.random.uniform(beta_key, shape)
    else:
      beta = alpha if backward == 'keep' else half
    return layers.shake(b1, alpha, beta) + layers.shake(b2, 1 - alpha, 1 - beta)


class Branch(nn.Module):
  """ReLU -> conv 3x3 (stride) -> BN -> ReLU -> conv 3x3 -> BN."""
  features: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  act: Any

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.conv(self.features, (3, 3), (self.strides, self.strides), padding=1)(self.act(x))
    y = self.conv(self.features, (3, 3), padding=1)(self.act(self.norm()(y)))
    return self.norm()(y)


class DownsamplingShortcut(nn.Module):
  """ReLU, then 1x1 convs on the even-offset and the one-pixel-shifted subsamples, concat, BN."""
  features: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  act: Any

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    in_features = x.shape[-1]
    if self.features != 2 * in_features:
      raise ValueError(f'the Shake-Shake shortcut doubles the width; asked {in_features} -> '
                       f'{self.features}')
    s = self.strides
    h = self.act(x)
    shifted = jnp.pad(h[:, 1:, 1:, :], ((0, 0), (0, 1), (0, 1), (0, 0)))
    y1 = self.conv(in_features, (1, 1))(h[:, ::s, ::s, :])
    y2 = self.conv(in_features, (1, 1))(shifted[:, ::s, ::s, :])
    return self.norm()(jnp.concatenate([y1, y2], axis=-1))


class ShakeBlock(nn.Module):
  """Two branches mixed by `ShakeCombine`, plus the identity or the downsampling shortcut."""
  features: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  act: Any
  shake_mode: str
  shake_level: str

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    unit = dict(conv=self.conv, norm=self.norm, act=self.act)
    b1 = Branch(self.features, self.strides, name='branch1', **unit)(x)
    b2 = Branch(self.features, self.strides, name='branch2', **unit)(x)
    y = ShakeCombine(self.shake_mode, self.shake_level, name='shake')(b1, b2, train)
    if x.shape[-1] == self.features and self.strides == 1:
      return x + y
    return DownsamplingShortcut(self.features, self.strides, name='shortcut', **unit)(x) + y


class ShakeShake(nn.Module):
  """Shake-Shake-depth 2 x base_width d.

  Attributes:
    num_classes: outputs of the final Linear.
    depth: 6n + 2; each of the three stages has n blocks.
    base_width: width of the stem and the first stage (96 for "2x96d"); stages double it.
    shake_mode: forward-backward coefficients, Gastaldi's names: shake-shake (default),
      shake-keep, shake-even, even-shake, even-even.
    shake_level: image (one coefficient per image; default) | batch.
    activation: relu | mish | swish.
    convention: torch (hysts: kaiming fan_out convs, BN 0.9 / 1e-5) | keras.
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  depth: int = 26
  base_width: int = 96
  shake_mode: str = 'shake-shake'
  shake_level: str = 'image'
  activation: str = 'relu'
  convention: str = 'torch'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.depth < 8 or (self.depth - 2) % 6:
      raise UserError(f'model.depth: Shake-Shake needs depth = 6n + 2 with n >= 1, got '
                      f'{self.depth}')
    conv = layers.conv_def(self.convention, self.dtype)
    norm = layers.norm_def(self.convention, self.dtype, train)
    act = layers.activation(self.activation)
    num_blocks = (self.depth - 2) // 6

    x = conv(self.base_width, (3, 3), name='stem')(x.astype(self.dtype))
    x = act(norm(name='stem_norm')(x))
    for i in range(3):
      for j in range(num_blocks):
        x = ShakeBlock(self.base_width * 2**i, 2 if i > 0 and j == 0 else 1, conv, norm, act,
                       self.shake_mode, self.shake_level, name=f'stage{i + 1}_block{j + 1}')(
                           x, train)

    x = jnp.mean(x, axis=(1, 2))
    dense = layers.dense_def(self.convention, self.dtype)
    return dense(self.num_classes, name='head')(x).astype(jnp.float32)


@register_model
def shake_shake26_2x96d() -> ShakeShake:
  """26 layers, 2 branches, base width 96: 26,330,026 params on a 1-channel input."""
  return ShakeShake(depth=26, base_width=96)


@register_model
def shake_shake26_2x64d() -> ShakeShake:
  """26 layers, 2 branches, base width 64: 11,708,362 params on a 1-channel input."""
  return ShakeShake(depth=26, base_width=64)
