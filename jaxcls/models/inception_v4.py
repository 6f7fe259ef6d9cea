"""Inception-v4 (Szegedy et al. 2017, "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning"): the pure Inception-v4 of Figure 9, not Inception-ResNet, laid out as
timm's `inception_v4` (TF-slim's network and weights).

Two forms, picked by `stem` (SPEC §11):
- 'imagenet': the network for 299x299 inputs. The stem (Figure 3) takes 299 to 35 in three
  stride-2 steps: 3x3/2 V 32 (149), 3x3 V 32 (147), 3x3 S 64, [max-pool 3x3/2 | 3x3/2 V 96]
  (73), [1x1 64 -> 3x3 V 96 | 1x1 64 -> 1x7 -> 7x1 -> 3x3 V 96] (71), [3x3/2 V 192 | max-pool
  3x3/2] (35, 384 channels). Then 4 x Inception-A on 35, Reduction-A, 7 x Inception-B on 17,
  Reduction-B, 3 x Inception-C on 8. With 1000 classes: 42,679,816 params and 63,168
  batch_stats, timm's counts.
- 'cifar': the same stem with every stride 1 and every conv and max-pool padded to keep its
  size, so the stem's branches and concatenations stay: grids 32 -> 15 -> 7 on a 32x32 input,
  close to the paper's 35 -> 17 -> 8 (the reductions, 3x3/2 VALID, see 32 and 15). Same
  parameters as 'imagenet'.

Easy to get wrong:
- Every conv (no bias) is followed by BN (epsilon 1e-3, TF-slim's; momentum 0.1, flax 0.9)
  and ReLU. Reduction-A is Table 1's Inception-v4 row k, l, m, n = 192, 224, 256, 384.
- The pool branches of Inception-A/B/C average 3x3/1 windows padded by 1 WITHOUT counting the
  padding (timm's `count_include_pad=False`, TF's SAME average pool).
- timm (and TF-slim) order the factorised 7x7 and 3x3 convs slightly differently from the
  paper's figures (Inception-B's double branch is 7x1, 1x7, 7x1, 1x7; Inception-C's is 3x1 to
  448 then 1x3 to 512); we follow timm, so its weights map one to one. The counts do not differ.
- Dropout before the classifier: the paper's keep 0.8, i.e. rate 0.2 (the 'dropout' rng stream).

`stage_sizes` (Inception-A, -B, -C modules, (4, 7, 3)) and `width_mult` (every conv's channels,
int(c * w)) give thinner and shallower variants.
"""

import functools
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.models import layers
from jaxcls.models.registry import register_model


def _avg_pool(x: jax.Array) -> jax.Array:
  return nn.avg_pool(x, (3, 3), (1, 1), padding='SAME', count_include_pad=False)


class _Branches(layers.Branches):
  first_index = 0  # timm's names: branch1_0, branch1_1, ...


class PoolAndConv(_Branches):
  """The stem's Mixed_3a (147 -> 73: max-pool 3x3/2 | 3x3/2 V 96) and Mixed_5a (71 -> 35:
  3x3/2 V 192 | max-pool 3x3/2): a max-pool and a conv of the same stride, concatenated."""
  features: int
  pool_first: bool
  strides: int = 2
  padding: str = 'VALID'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    s = self.strides
    pool = nn.max_pool(x, (3, 3), (s, s), padding=self.padding)
    conv = self.branch(x, 'conv', (self.features, (3, 3), s, self.padding))
    return jnp.concatenate([pool, conv] if self.pool_first else [conv, pool], axis=-1)


class Mixed4a(_Branches):
  """Stem, 73 -> 71: 1x1 64 -> 3x3 V 96 | 1x1 64 -> 1x7 64 -> 7x1 64 -> 3x3 V 96 (192)."""
  padding: str = 'VALID'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    p = self.padding
    x0 = self.branch(x, 'branch0', (64, (1, 1)), (96, (3, 3), 1, p))
    x1 = self.branch(x, 'branch1', (64, (1, 1)), (64, (1, 7)), (64, (7, 1)), (96, (3, 3), 1, p))
    return jnp.concatenate([x0, x1], axis=-1)


class InceptionA(_Branches):
  """Figure 4, 35x35: 1x1 96 | 1x1 64 -> 3x3 96 | 1x1 64 -> 3x3 96 -> 3x3 96 |
  avg-pool -> 1x1 96 (384)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.concatenate([
        self.branch(x, 'branch0', (96, (1, 1))),
        self.branch(x, 'branch1', (64, (1, 1)), (96, (3, 3))),
        self.branch(x, 'branch2', (64, (1, 1)), (96, (3, 3)), (96, (3, 3))),
        self.branch(_avg_pool(x), 'branch3', (96, (1, 1))),
    ], axis=-1)


class ReductionA(_Branches):
  """Figure 7, 35 -> 17 (k, l, m, n = 192, 224, 256, 384): 3x3/2 V 384 |
  1x1 192 -> 3x3 224 -> 3x3/2 V 256 | max-pool 3x3/2 (1024)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.concatenate([
        self.branch(x, 'branch0', (384, (3, 3), 2, 'VALID')),
        self.branch(x, 'branch1', (192, (1, 1)), (224, (3, 3)), (256, (3, 3), 2, 'VALID')),
        nn.max_pool(x, (3, 3), (2, 2)),
    ], axis=-1)


class InceptionB(_Branches):
  """Figure 5, 17x17: 1x1 384 | 1x1 192 -> 1x7 224 -> 7x1 256 |
  1x1 192 -> 7x1 192 -> 1x7 224 -> 7x1 224 -> 1x7 256 | avg-pool -> 1x1 128 (1024)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.concatenate([
        self.branch(x, 'branch0', (384, (1, 1))),
        self.branch(x, 'branch1', (192, (1, 1)), (224, (1, 7)), (256, (7, 1))),
        self.branch(x, 'branch2', (192, (1, 1)), (192, (7, 1)), (224, (1, 7)), (224, (7, 1)),
                    (256, (1, 7))),
        self.branch(_avg_pool(x), 'branch3', (128, (1, 1))),
    ], axis=-1)


class ReductionB(_Branches):
  """Figure 8, 17 -> 8: 1x1 192 -> 3x3/2 V 192 | 1x1 256 -> 1x7 256 -> 7x1 320 -> 3x3/2 V 320 |
  max-pool 3x3/2 (1536)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.concatenate([
        self.branch(x, 'branch0', (192, (1, 1)), (192, (3, 3), 2, 'VALID')),
        self.branch(x, 'branch1', (256, (1, 1)), (256, (1, 7)), (320, (7, 1)),
                    (320, (3, 3), 2, 'VALID')),
        nn.max_pool(x, (3, 3), (2, 2)),
    ], axis=-1)


class InceptionC(_Branches):
  """Figure 6, 8x8: 1x1 256 | 1x1 384 -> (1x3 256, 3x1 256) |
  1x1 384 -> 3x1 448 -> 1x3 512 -> (1x3 256, 3x1 256) | avg-pool -> 1x1 256 (1536)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x1 = self.branch(x, 'branch1_0', (384, (1, 1)))
    x2 = self.branch(x, 'branch2', (384, (1, 1)), (448, (3, 1)), (512, (1, 3)))
    return jnp.concatenate([
        self.branch(x, 'branch0', (256, (1, 1))),
        self.branch(x1, 'branch1_1a', (256, (1, 3))),
        self.branch(x1, 'branch1_1b', (256, (3, 1))),
        self.branch(x2, 'branch2_3a', (256, (1, 3))),
        self.branch(x2, 'branch2_3b', (256, (3, 1))),
        self.branch(_avg_pool(x), 'branch3', (256, (1, 1))),
    ], axis=-1)


class InceptionV4(nn.Module):
  """Inception-v4; `stem` picks the 299 px network or the CIFAR form.

  Attributes:
    num_classes: outputs of the final Dense.
    stem: 'cifar' (the stem at stride 1, size-keeping) | 'imagenet' (Figure 3's 299 px stem).
    stage_sizes: numbers of Inception-A, -B and -C modules.
    width_mult: multiplies every conv's channels (int(c * w), at least 1).
    dropout_rate: dropout on the pooled features (the 'dropout' rng stream).
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  stem: str = 'cifar'
  stage_sizes: tuple[int, int, int] = (4, 7, 3)
  # A module kind may be left out (0 modules): the registry's size check allows it.
  FIELD_MINIMA: ClassVar[dict[str, int]] = {'stage_sizes': 0}
  width_mult: float = 1.0
  dropout_rate: float = 0.2
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    layers.check_stage_sizes(self.stage_sizes, ('Inception-A', 'Inception-B', 'Inception-C'))
    w = layers.check_width_mult(self.width_mult)
    imagenet = layers.check_choice('stem', self.stem) == 'imagenet'
    unit = layers.conv_norm_act_def('torch', self.dtype, train, epsilon=1e-3)
    c = functools.partial(layers.scale_width, width_mult=w)
    strides, padding = (2, 'VALID') if imagenet else (1, 'SAME')

    x = x.astype(self.dtype)
    x = unit(c(32), (3, 3), strides, padding, name='stem_conv1')(x)
    x = unit(c(32), (3, 3), padding=padding, name='stem_conv2')(x)
    x = unit(c(64), (3, 3), name='stem_conv3')(x)
    x = PoolAndConv(w, unit, 96, True, strides, padding, name='mixed_3a')(x)
    x = Mixed4a(w, unit, padding, name='mixed_4a')(x)
    x = PoolAndConv(w, unit, 192, False, strides, padding, name='mixed_5a')(x)

    n_a, n_b, n_c = self.stage_sizes
    for i in range(n_a):
      x = InceptionA(w, unit, name=f'inception_a{i + 1}')(x)
    x = ReductionA(w, unit, name='reduction_a')(x)
    for i in range(n_b):
      x = InceptionB(w, unit, name=f'inception_b{i + 1}')(x)
    x = ReductionB(w, unit, name='reduction_b')(x)
    for i in range(n_c):
      x = InceptionC(w, unit, name=f'inception_c{i + 1}')(x)

    return layers.classifier_head(x, self.num_classes, self.dropout_rate, train, self.dtype,
                                  name='last_linear')


@register_model
def inception_v4() -> InceptionV4:
  """Inception-v4 (CIFAR form by default; stem='imagenet' is timm's 299 px network)."""
  return InceptionV4()
