"""Xception (Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions"), laid
out as timm's `legacy_xception` (the Keras network; conv1, bn1, block1, skip, skipbn, fc and
the like are timm's names; timm's `rep` sequence is named sepconv1, bn1, ... here).

Two forms, picked by `stem` (SPEC §11):
- 'imagenet': the network for 299x299 inputs (Figure 5). Stem 3x3/2 V 32 (149) and 3x3 V 64
  (147); entry flow blocks to 128, 256, 728, each ending in a 3x3/2 max-pool (74, 37, 19);
  middle flow 8 x 3 separable convs at 728 on 19x19; exit flow block to 1024 (10), separable
  convs to 1536 and 2048, global average pool. With 1000 classes: 22,855,952 params and
  54,528 batch_stats, timm's counts.
- 'cifar': the same blocks after a stride-1 stem padded to keep its size, and the first entry
  block (to 128) unstrided: grids 32 (stem, block 1) -> 16 (block 2) -> 8 (block 3 and the
  middle flow) -> 4 (exit flow) on a 32x32 input, the middle and exit grids of the CIFAR port
  behind the published CIFAR-100 figure (weiaicunzai/pytorch-cifar100, which unstrides the
  third block instead). Same parameters as 'imagenet' (the 1x1 shortcut of block 1 only loses
  its stride).

Easy to get wrong:
- A separable conv is a depthwise 3x3 then a pointwise 1x1, with NO BN or ReLU between them
  and no biases; BN follows the pair. A block is reps x [ReLU -> SeparableConv -> BN]; the
  first block starts without the ReLU (it follows the stem's BN-ReLU).
- The shortcut (1x1 conv with the block's stride, then BN; the identity in the middle flow)
  takes the block input BEFORE the block's first ReLU (timm's non-inplace first ReLU; Keras).
- The exit block (`grow_first=False`) keeps 728 channels in its first separable conv and grows
  to 1024 in its second; the other blocks grow in their first.
- The strided max-pools pad 1 on every side, as PyTorch's `MaxPool2d(3, 2, 1)` (on an odd size
  the same as TF's SAME; on an even one the windows start one pixel earlier).
- BN epsilon 1e-5 and momentum 0.1 (flax 0.9): timm's PyTorch defaults (Keras uses 1e-3).
- Dropout before the classifier: the paper's 0.5 on ImageNet (the 'dropout' rng stream).

`middle_blocks` (8) and `width_mult` (every conv's channels, int(c * w)) give thinner and
shallower variants.
"""

import functools
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.errors import UserError
from jaxcls.models import layers
from jaxcls.models.registry import register_model

ModuleDef = Any


class SeparableConv(nn.Module):
  """Depthwise 3x3 (stride 1, size-keeping) then pointwise 1x1 to `features`; no bias, no BN
  between them."""
  features: int
  conv: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = x.shape[-1]
    x = self.conv(channels, (3, 3), feature_group_count=channels, name='conv1')(x)
    return self.conv(self.features, (1, 1), name='pointwise')(x)


class Block(nn.Module):
  """reps x [ReLU -> SeparableConv -> BN], a 3x3 max-pool when strided, plus the shortcut: a
  1x1 conv (stride s) and BN when the width or grid changes, else the identity."""
  features: int
  reps: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  start_with_relu: bool = True
  grow_first: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    in_features = x.shape[-1]
    y = x
    for i in range(self.reps):
      grown = self.grow_first or i == self.reps - 1
      if i or self.start_with_relu:
        y = jax.nn.relu(y)
      y = SeparableConv(self.features if grown else in_features, self.conv,
                        name=f'sepconv{i + 1}')(y)
      y = self.norm(name=f'bn{i + 1}')(y)
    s = self.strides
    if s > 1:
      y = nn.max_pool(y, (3, 3), (s, s), padding=((1, 1), (1, 1)))
    if in_features == self.features and s == 1:
      return x + y
    shortcut = self.conv(self.features, (1, 1), (s, s), padding='VALID', name='skip')(x)
    return self.norm(name='skipbn')(shortcut) + y


class Xception(nn.Module):
  """Xception; `stem` picks the 299 px network or the CIFAR form.

  Attributes:
    num_classes: outputs of the final Dense.
    stem: 'cifar' (stride-1 stem, first block unstrided) | 'imagenet' (the 299 px network).
    middle_blocks: blocks of the middle flow (the paper's 8).
    width_mult: multiplies every conv's channels (int(c * w), at least 1).
    dropout_rate: dropout on the pooled features (the 'dropout' rng stream).
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  stem: str = 'cifar'
  middle_blocks: int = 8
  # A module kind may be left out (0 modules): the registry's size check allows it.
  FIELD_MINIMA: ClassVar[dict[str, int]] = {'middle_blocks': 0}
  width_mult: float = 1.0
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.middle_blocks < 0:
      raise UserError(f'model.middle_blocks: must be >= 0, got {self.middle_blocks}')
    c = functools.partial(layers.scale_width, width_mult=layers.check_width_mult(
        self.width_mult))
    imagenet = layers.check_choice('stem', self.stem) == 'imagenet'
    conv = layers.conv_def('torch', self.dtype)
    norm = layers.norm_def('torch', self.dtype, train)
    block = functools.partial(Block, conv=conv, norm=norm)
    strides, padding = (2, 'VALID') if imagenet else (1, 'SAME')

    x = x.astype(self.dtype)
    x = conv(c(32), (3, 3), (strides, strides), padding=padding, name='conv1')(x)
    x = jax.nn.relu(norm(name='bn1')(x))
    x = conv(c(64), (3, 3), padding=padding, name='conv2')(x)
    x = jax.nn.relu(norm(name='bn2')(x))

    x = block(c(128), 2, strides, start_with_relu=False, name='block1')(x)
    x = block(c(256), 2, 2, name='block2')(x)
    x = block(c(728), 2, 2, name='block3')(x)
    for i in range(self.middle_blocks):
      x = block(c(728), 3, 1, name=f'block{i + 4}')(x)
    x = block(c(1024), 2, 2, grow_first=False, name=f'block{self.middle_blocks + 4}')(x)

    x = jax.nn.relu(norm(name='bn3')(SeparableConv(c(1536), conv, name='conv3')(x)))
    x = jax.nn.relu(norm(name='bn4')(SeparableConv(c(2048), conv, name='conv4')(x)))
    return layers.classifier_head(x, self.num_classes, self.dropout_rate, train, self.dtype)


@register_model
def xception() -> Xception:
  """Xception (CIFAR form by default; stem='imagenet' is timm's `legacy_xception`)."""
  return Xception()
