"""ResNeSt (Zhang et al. 2020, "ResNeSt: Split-Attention Networks") in timm's `resnest50d` layout,
which matches the official code (zhanghang1989/ResNeSt) and the paper's ResNeSt-50: a ResNet-D
(deep stem, average-pool shortcut) whose bottleneck 3x3 conv is a split-attention conv with
radix 2 and cardinality 1, and whose stride moves to an average pool after it.

Forms (`stem`):
- 'imagenet', the paper's network on 224x224x3: deep stem 3x3/2 conv to 32 -> BN -> ReLU ->
  3x3 conv to 32 -> BN -> ReLU -> 3x3 conv to 64 -> BN -> ReLU, then a 3x3/2 max-pool.
- 'cifar': the same deep stem with its first conv at stride 1 and no max-pool, so the four
  stages run at 32, 16, 8 and 4 px; every parameter stays as in the ImageNet form.

Easy to get wrong:
- Split attention (Sec. 3): one 3x3 conv to radix x C channels in cardinality x radix groups
  (each radix split sees 1/radix of the input channels; the conv holds 9 C^2 weights, as a plain
  3x3 would), BN, ReLU; the splits are summed, average-pooled, passed through a 1x1 conv with
  bias to max(C * radix / 4 rounded to 8, 32) channels, BN (on the pooled vector), ReLU and a
  1x1 conv with bias back to radix x C; a softmax ACROSS the radix splits (sigmoid at radix 1)
  weighs the splits, which are summed. The attention logits are laid out (cardinality, radix,
  C / cardinality), the conv's splits (radix, C).
- "avd" (the average-pool downsampling): the 3x3 conv always runs at stride 1; a strided unit
  then average-pools 3x3/s with padding 1, the padding counted in the mean (PyTorch's
  AvgPool2d default), before the last 1x1 conv. A stride-1 unit has no pool (timm; the
  official `is_first` flag is off for stage 1 too).
- The shortcut of each stage's first unit is AvgPool (s x s)/s (ceil mode, real pixels only)
  -> 1x1 conv -> BN; stage 1's unit 1 (64 -> 256 channels, stride 1) has the conv and BN only.
- Counts: resnest50d at stem='imagenet', 1000 classes: 27,483,240 params + 64,576 batch_stats
  (timm); with 10 classes 25,454,730, in either form.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.errors import UserError
from jaxcls.models import layers
from jaxcls.models.registry import register_model

ModuleDef = Any


def radix_softmax(logits: jax.Array, radix: int, cardinality: int) -> jax.Array:
  """(N, 1, 1, radix * C) attention logits -> (N, 1, 1, radix, C) split weights.

  The logits are ordered (cardinality, radix, C / cardinality); radix 1 uses a sigmoid gate.
  """
  n, channels = logits.shape[0], logits.shape[-1] // radix
  if radix == 1:
    return jax.nn.sigmoid(logits).reshape(n, 1, 1, 1, channels)
  logits = logits.reshape(n, 1, 1, cardinality, radix, channels // cardinality)
  weights = jax.nn.softmax(logits.astype(jnp.float32), axis=4).astype(logits.dtype)
  return jnp.swapaxes(weights, 3, 4).reshape(n, 1, 1, radix, channels)


class SplitAttention(nn.Module):
  """The split-attention 3x3 conv ("Splat", Sec. 3.2): (N, H, W, C_in) -> (N, H, W, features)."""
  features: int
  radix: int
  cardinality: int
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.conv(self.features * self.radix, (3, 3),
                  feature_group_count=self.cardinality * self.radix, name='conv')(x)
    y = nn.relu(self.norm(name='norm')(y))
    splits = y.reshape(*y.shape[:3], self.radix, self.features)
    gap = jnp.mean(jnp.sum(splits, axis=3), axis=(1, 2), keepdims=True)
    attention_width = layers.make_divisible(x.shape[-1] * self.radix / 4, 8, min_value=32)
    a = self.conv(attention_width, (1, 1), feature_group_count=self.cardinality, use_bias=True,
                  name='fc1')(gap)
    a = nn.relu(self.norm(name='fc1_norm')(a))
    a = self.conv(self.features * self.radix, (1, 1), feature_group_count=self.cardinality,
                  use_bias=True, name='fc2')(a)
    return jnp.sum(splits * radix_softmax(a, self.radix, self.cardinality), axis=3)


class Bottleneck(nn.Module):
  """conv1x1 -> BN -> ReLU -> SplitAttention -> [AvgPool 3x3/s] -> conv1x1 (4 x features) -> BN,
  plus the shortcut, then ReLU."""
  features: int
  strides: int
  radix: int
  cardinality: int
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    out_features = 4 * self.features
    y = nn.relu(self.norm(name='norm1')(self.conv(self.features, (1, 1), name='conv1')(x)))
    y = SplitAttention(self.features, self.radix, self.cardinality, self.conv, self.norm,
                       name='split_attention')(y)
    if self.strides > 1:
      s = (self.strides, self.strides)
      y = nn.avg_pool(y, (3, 3), s, padding=((1, 1), (1, 1)), count_include_pad=True)
    y = self.norm(name='norm3')(self.conv(out_features, (1, 1), name='conv3')(y))
    shortcut = layers.Shortcut(out_features, self.strides, self.conv, self.norm, avg_down=True,
                               name='shortcut')(x)
    return nn.relu(y + shortcut)


class ResNeSt(nn.Module):
  """ResNeSt-D: deep stem, split-attention bottlenecks with avd, average-pool shortcuts.

  Attributes:
    num_classes: outputs of the final Dense.
    stage_sizes: units per stage; stage i has inner width base_width * 2**i (output 4x), stride
      2 from stage 2 on.
    base_width: inner width of the first stage (64), split into `cardinality` groups.
    stem_width: width of the first two deep-stem convs; the third doubles it (32 -> 64).
    radix: splits per cardinal group (2); 1 turns the softmax into a sigmoid gate.
    cardinality: groups of the split-attention conv (1).
    stem: imagenet (first stem conv stride 2, then a 3x3/2 max-pool) | cifar (stride 1, no pool).
    convention: torch (kaiming fan_out, BN 0.9 / 1e-5) | keras.
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  stage_sizes: tuple[int, ...] = (3, 4, 6, 3)
  base_width: int = 64
  stem_width: int = 32
  radix: int = 2
  cardinality: int = 1
  stem: str = 'cifar'
  convention: str = 'torch'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.radix < 1 or self.base_width % self.cardinality:
      raise UserError(f'model.radix / model.cardinality: need radix >= 1 and cardinality '
                      f'dividing base_width {self.base_width}, got {self.radix} / '
                      f'{self.cardinality}')
    conv = layers.conv_def(self.convention, self.dtype)
    norm = layers.norm_def(self.convention, self.dtype, train)
    imagenet = layers.check_choice('stem', self.stem) == 'imagenet'

    x = x.astype(self.dtype)
    widths = (self.stem_width, self.stem_width, 2 * self.stem_width)
    for k, width in enumerate(widths):
      # PyTorch's symmetric padding on the strided conv; TF SAME would pad (0, 1).
      s = 2 if imagenet and k == 0 else 1
      x = conv(width, (3, 3), (s, s), padding=1, name=f'stem{k + 1}')(x)
      x = nn.relu(norm(name=f'stem{k + 1}_norm')(x))
    if imagenet:
      x = layers.max_pool_3x3(x)
    for i, num_units in enumerate(self.stage_sizes):
      for j in range(num_units):
        x = Bottleneck(self.base_width * 2**i, 2 if i > 0 and j == 0 else 1, self.radix,
                       self.cardinality, conv, norm, name=f'stage{i + 1}_unit{j + 1}')(x)
    x = jnp.mean(x, axis=(1, 2))
    dense = layers.dense_def(self.convention, self.dtype)
    return dense(self.num_classes, name='head')(x).astype(jnp.float32)


@register_model
def resnest50d() -> ResNeSt:
  """ResNeSt-50 (timm `resnest50d`: radix 2, cardinality 1, deep stem 32, avg-down), units
  3,4,6,3. stem='imagenet', 1000 classes: 27,483,240 params + 64,576 batch_stats."""
  return ResNeSt()
