"""IBN-Net (Pan et al. 2018, "Two at Once: Enhancing Learning and Generalization Capacities via
IBN-Net"), its IBN-a form, as the official code (XingangPan/IBN-Net, `resnet_ibn.py`) builds it:
in every unit of the first three stages, the norm after the unit's first conv normalises the
first half of the channels with InstanceNorm (affine) and the other half with BatchNorm
(`layers.InstanceBatchNorm`). Stage 4, the stem, the shortcuts and every other norm keep BN.

Two networks carry it:
- seed A's pre-activation bottleneck ResNets (`resnet_v2.py`, SPEC §1) with `ibn_stages=3`:
  `resnet35b_ibn_a`, `resnet50b_ibn_a`, `resnet101b_ibn_a`. A pre-activation unit is
  BN-act-conv1x1, BN-act-conv3x3, BN-act-conv1x1; the norm AFTER the first 1x1 conv, the one the
  paper turns into IBN, is the BN that opens the 3x3 PreActConv. That one becomes IBN. The unit's
  first BN reads the residual stream (the running sum of all earlier units) and stays BN: in
  the paper's post-activation unit IN only ever sees the first conv's output, never that sum.
- torchvision's ResNet-50 (`IBNResNet`, `resnet50_ibn_a`): post-activation bottlenecks with the
  stride on the 3x3 conv ("v1.5", as the official IBN code has it) and a 1x1-conv + BN
  projection shortcut at each stage's first unit. `stem='imagenet'` is the paper's network on
  224x224x3: 7x7/2 conv (padding 3) -> BN -> ReLU -> 3x3/2 max-pool; `stem='cifar'` is a 3x3
  stride-1 conv to 64 -> BN -> ReLU with no max-pool, the usual CIFAR port.

Easy to get wrong:
- InstanceNorm's affine pair takes the place of BN's, so the parameter count does not change
  (resnet50_ibn_a has ResNet-50's 25,557,032 at 1000 classes), but IN keeps no running
  statistics: `batch_stats` lose 2 x the IN channels. ResNet-50 has 26,560 BN channels (53,120
  batch_stats); IBN-a puts int(w/2) of the w channels of 13 norms under IN (3 x 32 + 4 x 64 +
  6 x 128 = 1,120), so resnet50_ibn_a keeps 53,120 - 2 x 1,120 = 50,880. Seed A's resnet50b
  (inner widths 16/32/64) loses 2 x (3 x 8 + 4 x 16 + 6 x 32) = 560: 11,360 -> 10,800.
- The IN half is the FIRST int(C/2) channels, BN the rest; IN uses BN's epsilon (1e-5 with the
  torch convention) and normalises each sample on its own in training and inference alike.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.models import layers
from jaxcls.models.registry import register_model
from jaxcls.models.resnet_v2 import ResNetV2

ModuleDef = Any


class Bottleneck(nn.Module):
  """torchvision's bottleneck (v1.5): conv1x1 -> norm1 -> ReLU -> conv3x3 (stride s) -> BN ->
  ReLU -> conv1x1 (4 x features) -> BN, plus the shortcut, then ReLU. norm1 is IBN under IBN-a."""
  features: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  first_norm: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    out_features = 4 * self.features
    s = (self.strides, self.strides)
    y = nn.relu(self.first_norm(name='norm1')(self.conv(self.features, (1, 1), name='conv1')(x)))
    # PyTorch's symmetric padding; TF SAME would pad (0, 1) at stride 2.
    y = self.conv(self.features, (3, 3), s, padding=1, name='conv2')(y)
    y = nn.relu(self.norm(name='norm2')(y))
    y = self.norm(name='norm3')(self.conv(out_features, (1, 1), name='conv3')(y))
    shortcut = layers.Shortcut(out_features, self.strides, self.conv, self.norm,
                               name='shortcut')(x)
    return nn.relu(y + shortcut)


class IBNResNet(nn.Module):
  """torchvision's ResNet (bottleneck, v1.5) with IBN-a in its first `ibn_stages` stages.

  Attributes:
    num_classes: outputs of the final Dense.
    stage_sizes: units per stage; stage i has inner width base_width * 2**i (output 4x), stride
      2 from stage 2 on.
    base_width: inner width of the first stage (64: ResNet-50).
    ibn_stages: stages whose units' first norm is IBN (3 for IBN-a); 0 gives plain ResNet-50.
    stem: imagenet (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) | cifar (3x3/1 conv, BN, ReLU).
    convention: torch (kaiming fan_out, BN 0.9 / 1e-5, the official code's) | keras.
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  stage_sizes: tuple[int, ...] = (3, 4, 6, 3)
  base_width: int = 64
  ibn_stages: int = 3
  stem: str = 'cifar'
  convention: str = 'torch'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    conv = layers.conv_def(self.convention, self.dtype)
    norm = layers.norm_def(self.convention, self.dtype, train)
    ibn = layers.ibn_def(self.convention, self.dtype, train)

    x = x.astype(self.dtype)
    if layers.check_choice('stem', self.stem) == 'imagenet':
      x = conv(self.base_width, (7, 7), (2, 2), padding=3, name='stem')(x)
      x = layers.max_pool_3x3(nn.relu(norm(name='stem_norm')(x)))
    else:
      x = nn.relu(norm(name='stem_norm')(conv(self.base_width, (3, 3), name='stem')(x)))
    for i, num_units in enumerate(self.stage_sizes):
      for j in range(num_units):
        x = Bottleneck(self.base_width * 2**i, 2 if i > 0 and j == 0 else 1, conv, norm,
                       ibn if i < self.ibn_stages else norm, name=f'stage{i + 1}_unit{j + 1}')(x)
    x = jnp.mean(x, axis=(1, 2))
    dense = layers.dense_def(self.convention, self.dtype)
    return dense(self.num_classes, name='head')(x).astype(jnp.float32)


_ibn_resnet_v2 = functools.partial(ResNetV2, bottleneck=True, ibn_stages=3)


@register_model
def resnet35b_ibn_a() -> ResNetV2:
  """Seed A's ResNet35b (units 2,3,4,2) with IBN-a in stages 1-3: 866,010 params (as
  resnet35b) + 7,328 batch_stats (7,712 less 2 x 192 IN channels), 51.83M MACs."""
  return _ibn_resnet_v2(stage_sizes=(2, 3, 4, 2))


@register_model
def resnet50b_ibn_a() -> ResNetV2:
  """Seed A's ResNet50b (units 3,4,6,3) with IBN-a in stages 1-3: 1,309,210 params + 10,800
  batch_stats (11,360 less 2 x 280 IN channels), 74.11M MACs."""
  return _ibn_resnet_v2(stage_sizes=(3, 4, 6, 3))


@register_model
def resnet101b_ibn_a() -> ResNetV2:
  """Seed A's ResNet101b (units 3,4,23,3) with IBN-a in stages 1-3: 2,506,010 params +
  22,768 batch_stats (24,416 less 2 x 824 IN channels), 149.87M MACs."""
  return _ibn_resnet_v2(stage_sizes=(3, 4, 23, 3))


@register_model
def resnet50_ibn_a() -> IBNResNet:
  """ResNet-50-IBN-a (torchvision v1.5 layout). stem='imagenet', 1000 classes: 25,557,032
  params (ResNet-50's) + 50,880 batch_stats, 4,089.18M MACs; stem='cifar', 10 classes:
  23,520,842 + 50,880, 1,297.83M MACs."""
  return IBNResNet()
