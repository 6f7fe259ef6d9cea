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
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.models import layers
from jaxcls.models.registry import register_model


def _avg_pool(x: jax.Array) -> jax.Array:
  return nn.avg_pool(x, (3, 3), (1, 1), padding='SAME', count_include_pad=True)


def _max_pool(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (3, 3), (2, 2))


class InceptionA(layers.Branches):
  """Mixed_5b-d: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg-pool -> 1x1 (pool_features)."""
  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.concatenate([
        self.branch(x, 'branch1x1', (64, (1, 1))),
        self.branch(x, 'branch5x5', (48, (1, 1)), (64, (5, 5))),
        self.branch(x, 'branch3x3dbl', (64, (1, 1)), (96, (3, 3)), (96, (3, 3))),
        self.branch(_avg_pool(x), 'branch_pool', (self.pool_features, (1, 1))),
    ], axis=-1)


class InceptionB(layers.Branches):
  """Mixed_6a, the 35 -> 17 grid reduction: 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max-pool 3x3/2."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.concatenate([
        self.branch(x, 'branch3x3', (384, (3, 3), 2, 'VALID')),
        self.branch(x, 'branch3x3dbl', (64, (1, 1)), (96, (3, 3)), (96, (3, 3), 2, 'VALID')),
        _max_pool(x),
    ], axis=-1)


class InceptionC(layers.Branches):
  """Mixed_6b-e (Figure 6, n = 7): 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 |
  avg-pool -> 1x1; 192 channels each, the inner convs c7 wide."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c7 = self.channels_7x7
    return jnp.concatenate([
        self.branch(x, 'branch1x1', (192, (1, 1))),
        self.branch(x, 'branch7x7', (c7, (1, 1)), (c7, (1, 7)), (192, (7, 1))),
        self.branch(x, 'branch7x7dbl', (c7, (1, 1)), (c7, (7, 1)), (c7, (1, 7)), (c7, (7, 1)),
                    (192, (1, 7))),
        self.branch(_avg_pool(x), 'branch_pool', (192, (1, 1))),
    ], axis=-1)


class InceptionD(layers.Branches):
  """Mixed_7a, the 17 -> 8 grid reduction: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 |
  max-pool 3x3/2."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.concatenate([
        self.branch(x, 'branch3x3', (192, (1, 1)), (320, (3, 3), 2, 'VALID')),
        self.branch(x, 'branch7x7x3', (192, (1, 1)), (192, (1, 7)), (192, (7, 1)),
                    (192, (3, 3), 2, 'VALID')),
        _max_pool(x),
    ], axis=-1)


class InceptionE(layers.Branches):
  """Mixed_7b-c (Figure 7): 1x1 | 1x1 -> (1x3, 3x1) | 1x1 -> 3x3 -> (1x3, 3x1) |
  avg-pool -> 1x1."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = self.branch(x, 'branch3x3_1', (384, (1, 1)))
    bd = self.branch(x, 'branch3x3dbl', (448, (1, 1)), (384, (3, 3)))
    return jnp.concatenate([
        self.branch(x, 'branch1x1', (320, (1, 1))),
        self.branch(b3, 'branch3x3_2a', (384, (1, 3))),
        self.branch(b3, 'branch3x3_2b', (384, (3, 1))),
        self.branch(bd, 'branch3x3dbl_3a', (384, (1, 3))),
        self.branch(bd, 'branch3x3dbl_3b', (384, (3, 1))),
        self.branch(_avg_pool(x), 'branch_pool', (192, (1, 1))),
    ], axis=-1)


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
  # A module kind may be left out (0 modules): the registry's size check allows it.
  FIELD_MINIMA: ClassVar[dict[str, int]] = {'stage_sizes': 0}
  width_mult: float = 1.0
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    layers.check_stage_sizes(self.stage_sizes, ('Mixed_5', 'Mixed_6', 'Mixed_7'))
    w = layers.check_width_mult(self.width_mult)
    imagenet = layers.check_choice('stem', self.stem) == 'imagenet'
    unit = layers.conv_norm_act_def('torch', self.dtype, train, epsilon=1e-3)
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
      x = InceptionA(w, unit, 32 if i == 0 else 64, name=f'Mixed_5{chr(ord("b") + i)}')(x)
    x = InceptionB(w, unit, name='Mixed_6a')(x)
    for i in range(n6):
      x = InceptionC(w, unit, _channels_7x7(i, n6), name=f'Mixed_6{chr(ord("b") + i)}')(x)
    x = InceptionD(w, unit, name='Mixed_7a')(x)
    for i in range(n7):
      x = InceptionE(w, unit, name=f'Mixed_7{chr(ord("b") + i)}')(x)
    return layers.classifier_head(x, self.num_classes, self.dropout_rate, train, self.dtype)


@register_model
def inception_v3() -> InceptionV3:
  """Inception-v3 (CIFAR form by default; stem='imagenet' is torchvision's 299 px network)."""
  return InceptionV3()
