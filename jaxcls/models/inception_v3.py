"""Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer
Vision") without its auxiliary classifier, laid out as torchvision's `inception_v3` (TF-slim's
network, whose ImageNet weights torchvision and timm ship; module names follow torchvision).

Two forms, picked by `stem` (SPEC §11):
- 'imagenet': the network for 299x299 inputs. The stem (3x3/2 V, 3x3 V, 3x3 S, max-pool 3x3/2,
  1x1, 3x3 V, max-pool 3x3/2) takes 299 to 35; the modules run on grids 35 (Mixed_5b-d),
  17 (Mixed_6b-e) and 8 (Mixed_7b-c). With 1000 classes: 23,834,568 params and 34,432
  batch_stats, torchvision's and timm's counts without the aux head.
- 'cifar': the same stem convs at stride 1, each padded to keep its size, and no max-pool, then
  the same modules: grids 32 -> 15 -> 7 on a 32x32 input, close to the paper's 35 -> 17 -> 8
  (the two grid reductions, 3x3/2 VALID, see 32 and 15). Same parameters as 'imagenet'.

Easy to get wrong:
- Every conv (no bias) is followed by BN and ReLU, the last conv of each branch included; BN
  epsilon is TF-slim's 1e-3 (kept by torchvision and timm), momentum PyTorch's 0.1 (flax 0.9).
- Mixed_5 keeps a 5x5 branch (1x1 48 -> 5x5 64) beside the double 3x3: TF-slim's network, not
  the all-3x3 module of the paper's Figure 5. Its pool projections are 32, 64, 64 (5b, 5c, 5d);
  the 7x7-factorised width c7 of Mixed_6b-e is 128, 160, 160, 192.
- The pool branches average 3x3/1 windows padded by 1 and count the padding in the divisor
  (PyTorch's default `count_include_pad=True`, as torchvision). The grid reductions (Mixed_6a,
  Mixed_7a: the paper's Figure 10) use VALID stride-2 convs and a 3x3/2 max-pool.
- Mixed_7b/7c (Figure 7) split a 1x1 and a 3x3 output each into parallel 1x3 and 3x1 convs and
  concatenate both: 320 + 768 + 768 + 192 = 2048 channels.
- Dropout before the classifier: torchvision's 0.5 (the 'dropout' rng stream).

`stage_sizes` (modules on the three grids, (3, 4, 2)) and `width_mult` (every conv's channels,
int(c * w)) give thinner and shallower variants; the first Mixed_5 module projects its pool to
32, the others to 64; the first Mixed_6 module has c7 = 128, the last 192, the rest 160.
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


def _avg_pool(x: jax.Array) -> jax.Array:
  return nn.avg_pool(x, (3, 3), (1, 1), padding='SAME', count_include_pad=True)


def _max_pool(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (3, 3), (2, 2))


class InceptionA(nn.Module):
  """Mixed_5b-d: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg-pool -> 1x1 (pool_features)."""
  pool_features: int
  width_mult: float
  unit: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = functools.partial(layers.scale_width, width_mult=self.width_mult)
    unit = self.unit
    b1 = unit(c(64), (1, 1), name='branch1x1')(x)
    b5 = unit(c(48), (1, 1), name='branch5x5_1')(x)
    b5 = unit(c(64), (5, 5), name='branch5x5_2')(b5)
    b3 = unit(c(64), (1, 1), name='branch3x3dbl_1')(x)
    b3 = unit(c(96), (3, 3), name='branch3x3dbl_2')(b3)
    b3 = unit(c(96), (3, 3), name='branch3x3dbl_3')(b3)
    bp = unit(c(self.pool_features), (1, 1), name='branch_pool')(_avg_pool(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a, the 35 -> 17 grid reduction: 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max-pool 3x3/2."""
  width_mult: float
  unit: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = functools.partial(layers.scale_width, width_mult=self.width_mult)
    unit = functools.partial(self.unit, padding='VALID')
    b3 = unit(c(384), (3, 3), 2, name='branch3x3')(x)
    bd = self.unit(c(64), (1, 1), name='branch3x3dbl_1')(x)
    bd = self.unit(c(96), (3, 3), name='branch3x3dbl_2')(bd)
    bd = unit(c(96), (3, 3), 2, name='branch3x3dbl_3')(bd)
    return jnp.concatenate([b3, bd, _max_pool(x)], axis=-1)


class InceptionC(nn.Module):
  """Mixed_6b-e (Figure 6, n = 7): 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 |
  avg-pool -> 1x1; 192 channels each, the inner convs c7 wide."""
  channels_7x7: int
  width_mult: float
  unit: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = functools.partial(layers.scale_width, width_mult=self.width_mult)
    unit, c7 = self.unit, c(self.channels_7x7)
    b1 = unit(c(192), (1, 1), name='branch1x1')(x)
    b7 = unit(c7, (1, 1), name='branch7x7_1')(x)
    b7 = unit(c7, (1, 7), name='branch7x7_2')(b7)
    b7 = unit(c(192), (7, 1), name='branch7x7_3')(b7)
    bd = unit(c7, (1, 1), name='branch7x7dbl_1')(x)
    bd = unit(c7, (7, 1), name='branch7x7dbl_2')(bd)
    bd = unit(c7, (1, 7), name='branch7x7dbl_3')(bd)
    bd = unit(c7, (7, 1), name='branch7x7dbl_4')(bd)
    bd = unit(c(192), (1, 7), name='branch7x7dbl_5')(bd)
    bp = unit(c(192), (1, 1), name='branch_pool')(_avg_pool(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a, the 17 -> 8 grid reduction: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 |
  max-pool 3x3/2."""
  width_mult: float
  unit: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = functools.partial(layers.scale_width, width_mult=self.width_mult)
    unit = self.unit
    reduce = functools.partial(self.unit, strides=2, padding='VALID')
    b3 = unit(c(192), (1, 1), name='branch3x3_1')(x)
    b3 = reduce(c(320), (3, 3), name='branch3x3_2')(b3)
    b7 = unit(c(192), (1, 1), name='branch7x7x3_1')(x)
    b7 = unit(c(192), (1, 7), name='branch7x7x3_2')(b7)
    b7 = unit(c(192), (7, 1), name='branch7x7x3_3')(b7)
    b7 = reduce(c(192), (3, 3), name='branch7x7x3_4')(b7)
    return jnp.concatenate([b3, b7, _max_pool(x)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b-c (Figure 7): 1x1 | 1x1 -> (1x3, 3x1) | 1x1 -> 3x3 -> (1x3, 3x1) |
  avg-pool -> 1x1."""
  width_mult: float
  unit: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = functools.partial(layers.scale_width, width_mult=self.width_mult)
    unit = self.unit
    b1 = unit(c(320), (1, 1), name='branch1x1')(x)
    b3 = unit(c(384), (1, 1), name='branch3x3_1')(x)
    b3 = jnp.concatenate([unit(c(384), (1, 3), name='branch3x3_2a')(b3),
                          unit(c(384), (3, 1), name='branch3x3_2b')(b3)], axis=-1)
    bd = unit(c(448), (1, 1), name='branch3x3dbl_1')(x)
    bd = unit(c(384), (3, 3), name='branch3x3dbl_2')(bd)
    bd = jnp.concatenate([unit(c(384), (1, 3), name='branch3x3dbl_3a')(bd),
                          unit(c(384), (3, 1), name='branch3x3dbl_3b')(bd)], axis=-1)
    bp = unit(c(192), (1, 1), name='branch_pool')(_avg_pool(x))
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


def _channels_7x7(index: int, count: int) -> int:
  """c7 of the index-th of `count` Mixed_6 modules: 128, 160, ..., 160, 192."""
  return 128 if index == 0 else 192 if index == count - 1 else 160


class InceptionV3(nn.Module):
  """Inception-v3 without the aux head; `stem` picks the 299 px network or the CIFAR form.

  Attributes:
    num_classes: outputs of the final Dense.
    stem: 'cifar' (stride-1 stem, no max-pool) | 'imagenet' (the paper's 299 px stem).
    stage_sizes: numbers of modules on the three grids (Mixed_5, Mixed_6, Mixed_7).
    width_mult: multiplies every conv's channels (int(c * w), at least 1).
    dropout_rate: dropout on the pooled features (the 'dropout' rng stream).
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  stem: str = 'cifar'
  stage_sizes: tuple[int, int, int] = (3, 4, 2)
  width_mult: float = 1.0
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    _check_stage_sizes(self.stage_sizes)
    w = layers.check_width_mult(self.width_mult)
    layers.check_dropout_rate(self.dropout_rate)
    imagenet = layers.check_choice('stem', self.stem) == 'imagenet'
    norm = functools.partial(layers.norm_def('torch', self.dtype, train), epsilon=1e-3)
    unit = functools.partial(layers.ConvNormAct, conv=layers.conv_def('torch', self.dtype),
                             norm=norm)
    c = functools.partial(layers.scale_width, width_mult=w)
    strides, padding = (2, 'VALID') if imagenet else (1, 'SAME')

    x = x.astype(self.dtype)
    x = unit(c(32), (3, 3), strides, padding, name='Conv2d_1a_3x3')(x)
    x = unit(c(32), (3, 3), padding=padding, name='Conv2d_2a_3x3')(x)
    x = unit(c(64), (3, 3), name='Conv2d_2b_3x3')(x)
    if imagenet:
      x = _max_pool(x)
    x = unit(c(80), (1, 1), name='Conv2d_3b_1x1')(x)
    x = unit(c(192), (3, 3), padding=padding, name='Conv2d_4a_3x3')(x)
    if imagenet:
      x = _max_pool(x)

    n5, n6, n7 = self.stage_sizes
    for i in range(n5):
      x = InceptionA(32 if i == 0 else 64, w, unit, name=f'Mixed_5{chr(98 + i)}')(x)
    x = InceptionB(w, unit, name='Mixed_6a')(x)
    for i in range(n6):
      x = InceptionC(_channels_7x7(i, n6), w, unit, name=f'Mixed_6{chr(98 + i)}')(x)
    x = InceptionD(w, unit, name='Mixed_7a')(x)
    for i in range(n7):
      x = InceptionE(w, unit, name=f'Mixed_7{chr(98 + i)}')(x)

    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    dense = layers.dense_def('torch', self.dtype)
    return dense(self.num_classes, name='fc')(x).astype(jnp.float32)


def _check_stage_sizes(stage_sizes: tuple[int, ...]) -> None:
  if len(stage_sizes) != 3 or any(n < 0 for n in stage_sizes):
    raise UserError(f'model.stage_sizes: three module counts >= 0 (Mixed_5, 6, 7), got '
                    f'{stage_sizes!r}')


@register_model
def inception_v3() -> InceptionV3:
  """Inception-v3 (CIFAR form by default; stem='imagenet' is torchvision's 299 px network)."""
  return InceptionV3()
