"""Dual Path Networks (Chen et al. 2017, "Dual Path Networks") in seed B's small CIFAR-style form
(jungwon1413/pytorch_image_classification, notebook 3, "DualPathNet_28_10"): SPEC section 6.3.

Each stage carries a residual path of f channels and a densely growing path, side by side in one
tensor whose first f channels are the residual part. Easy to get wrong:
- A stage OPENS with a transition, the concatenation of a pre-activation basic block (f
  channels; its 1x1 projection shortcut takes the activated input) and a plain 3x3 conv to 2g
  on the RAW input, both at the stage's stride; the transition outputs f + 2g channels.
- Then come only num_blocks - 1 dual-path blocks (3 for "4, 4, 4"). Each runs BN-ReLU-conv
  3x3 twice, both to f + g channels, and outputs [x[:f] + y[:f], x[f:], y[f:]]: the residual
  sum first, the old dense features, then the g new ones.
- The stem is a bare 3x3 conv to 16 channels (no BN/act); the head is BN -> ReLU -> GAP ->
  Linear, whose weights the notebook draws kaiming-normal (fan_in, gain sqrt 2).
- 3x3 convs pad 1 pixel on every side as PyTorch does (not TF SAME's (0, 1) on stride 2).

Seed B's DPN (blocks 4,4,4, filters 160/320/640, growth 16/32/64) on Fashion-MNIST has
47,751,450 parameters; its channels run 192 -> 240, 384 -> 480, 768 -> 960.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.errors import UserError
from jaxcls.models import layers
from jaxcls.models.registry import register_model

ModuleDef = Any


class Transition(nn.Module):
  """Opens a stage: concat[pre-activation basic block (f), conv 3x3 of the raw input (2g)]."""
  features: int
  growth_rate: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  act: Any

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    strides = (self.strides, self.strides)
    a = self.act(self.norm()(x))
    r = self.conv(self.features, (3, 3), strides, padding=1)(a)
    r = self.conv(self.features, (3, 3), padding=1)(self.act(self.norm()(r)))
    if self.strides != 1 or x.shape[-1] != self.features:
      r = r + self.conv(self.features, (1, 1), strides, name='shortcut')(a)
    else:
      r = r + x
    dense = self.conv(2 * self.growth_rate, (3, 3), strides, padding=1, name='dense_path')(x)
    return jnp.concatenate([r, dense], axis=-1)


class DualPathBlock(nn.Module):
  """Two PreActConv 3x3 to f + g; residual add on the first f channels, the g new ones appended."""
  features: int
  growth_rate: int
  conv: ModuleDef
  norm: ModuleDef
  act: Any

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    unit = dict(conv=self.conv, norm=self.norm, act=self.act)
    width = self.features + self.growth_rate
    y = layers.PreActConv(width, (3, 3), **unit)(x)
    y = layers.PreActConv(width, (3, 3), **unit)(y)
    f = self.features
    return jnp.concatenate([x[..., :f] + y[..., :f], x[..., f:], y[..., f:]], axis=-1)


class DPN(nn.Module):
  """Seed B's three-stage Dual Path Network.

  Attributes:
    num_classes: outputs of the final Linear.
    stage_sizes: blocks per stage, counting the transition (so n - 1 dual-path blocks follow).
    filters: f, the residual-path width of each stage.
    growth_rates: g, the channels each dual-path block adds (the transition adds 2g).
    stem_width: channels of the stem conv.
    activation: relu | mish | swish.
    convention: torch (seed B: kaiming fan_out convs, BN 0.9 / 1e-5) | keras.
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  stage_sizes: tuple[int, ...] = (4, 4, 4)
  filters: tuple[int, ...] = (160, 320, 640)
  growth_rates: tuple[int, ...] = (16, 32, 64)
  stem_width: int = 16
  activation: str = 'relu'
  convention: str = 'torch'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if not len(self.stage_sizes) == len(self.filters) == len(self.growth_rates):
      raise UserError(f'model.stage_sizes, model.filters, model.growth_rates: need one value per '
                      f'stage each, got {self.stage_sizes}, {self.filters}, {self.growth_rates}')
    if min(self.stage_sizes, default=0) < 1:
      raise UserError(f'model.stage_sizes: every stage needs >= 1 block (its transition), got '
                      f'{self.stage_sizes}')
    conv = layers.conv_def(self.convention, self.dtype)
    norm = layers.norm_def(self.convention, self.dtype, train)
    act = layers.activation(self.activation)
    unit = dict(conv=conv, norm=norm, act=act)

    x = conv(self.stem_width, (3, 3), name='stem')(x.astype(self.dtype))
    for i, (n, f, g) in enumerate(zip(self.stage_sizes, self.filters, self.growth_rates)):
      x = Transition(f, g, 2 if i else 1, name=f'stage{i + 1}_transition', **unit)(x)
      for j in range(n - 1):
        x = DualPathBlock(f, g, name=f'stage{i + 1}_block{j + 1}', **unit)(x)

    x = act(norm(name='head_norm')(x))
    x = jnp.mean(x, axis=(1, 2))
    head_init = {}
    if self.convention == 'torch':  # the notebook's init.kaiming_normal on the Linear weight
      head_init['kernel_init'] = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')
    dense = layers.dense_def(self.convention, self.dtype)
    return dense(self.num_classes, name='head', **head_init)(x).astype(jnp.float32)


@register_model
def dpn() -> DPN:
  """Seed B's DPN: 47,751,450 params on Fashion-MNIST's 1-channel input."""
  return DPN()
