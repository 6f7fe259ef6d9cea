"""Layers shared by the model families: activations, init conventions, pre-activation units and
the post-activation Conv-BN-act unit, the parameter-free ResNetV2 shortcut, the projection
shortcut (with ResNet-D's average-pool variant), IBN-a's instance-batch norm,
squeeze-and-excitation, stochastic depth, ShakeDrop and the shake primitive (one coefficient
forward, another backward) of Shake-Shake and ShakeDrop.

Details that are easy to get wrong:
- Pre-activation order (He et al. 2016, "Identity Mappings in Deep Residual Networks") is
  BN -> act -> Conv, and the shortcut takes the RAW unit input, not the activated one.
- Stochastic depth (Huang et al. 2016) comes in two flavours. Seed A draws ONE uniform number per
  block per step for the whole batch and, at inference, scales the branch by its survival
  probability; timm's `drop_path` draws per sample and scales by 1/p while training, so inference
  is the identity. Both use p_l = 1 - (l/L)(1 - p_L) over the global block index l = 1..L.

Parameter naming (what an optimizer mask can rely on):
- every convolution kernel is a 4-D leaf named `kernel` (HWIO); Dense kernels are 2-D;
- a conv whose module name ends in `NO_L2_SUFFIX` is one that the paper's L2 regulariser skips
  (MobileNetV2's stem and head convs). `weight_decay_mask` turns this into a boolean pytree;
- a leaf whose name starts with `FROZEN_PREFIX` is a constant stored with the weights (airbench's
  data-dependent whitening filters): the model reads it through `lax.stop_gradient`, so it gets
  no gradient, and `weight_decay_mask` never decays it, so no optimizer moves it.
"""

from collections.abc import Callable, Sequence
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.errors import UserError

ModuleDef = Any
Array = jax.Array

# Module-name suffix of conv layers that Keras-style L2 on conv kernels leaves out.
NO_L2_SUFFIX = '_no_l2'
# Leaf-name prefix of frozen parameters: no gradient (the model stops it) and no weight decay.
FROZEN_PREFIX = 'frozen_'

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    'relu': jax.nn.relu,
    'mish': jax.nn.mish,  # x * tanh(softplus(x))
    'swish': jax.nn.swish,  # x * sigmoid(x), a.k.a. SiLU
}
DROP_PATH_MODES = ('batch', 'sample')
CONVENTIONS = ('keras', 'torch')
WEIGHT_DECAY_ON = ('all', 'conv_kernels', 'kernels')
# Gastaldi 2017's names, forward-backward: 'shake' draws U(0, 1), 'even' uses 0.5 and 'keep'
# reuses the forward coefficient backward (so shake-keep trains like a random convex mix).
SHAKE_MODES = ('shake-shake', 'shake-keep', 'shake-even', 'even-shake', 'even-even')
SHAKE_LEVELS = ('image', 'batch')
# What one ShakeDrop coefficient pair (alpha, beta) covers; the gate b_l is one per batch.
SHAKEDROP_LEVELS = ('image', 'pixel', 'batch')
# Where the zero channels of a widening parameter-free shortcut go: split over both sides (seed A's
# ResNetV2) or appended after the input's channels (PyramidNet, as its papers' code does).
PAD_SIDES = ('both', 'end')
# The planned families (SPEC §11) come in two forms: 'cifar' (3x3 stride-1 stem, no early
# max-pool, or seed A's upsampled input) and the paper's own 'imagenet' form, whose published
# counts check the code.
STEMS = ('cifar', 'imagenet')

# Choice-valued model fields and their allowed values; `create_model` checks them eagerly.
CHOICES: dict[str, tuple[str, ...]] = {
    'activation': tuple(ACTIVATIONS),
    'drop_path_mode': DROP_PATH_MODES,
    'convention': CONVENTIONS,
    'shake_mode': SHAKE_MODES,
    'shake_level': SHAKE_LEVELS,
    'shakedrop_level': SHAKEDROP_LEVELS,
    'stem': STEMS,
}


def check_choice(field: str, value: str) -> str:
  """Returns `value` if it is allowed for model field `field`, else raises UserError."""
  allowed = CHOICES[field]
  if value not in allowed:
    raise UserError(f"model.{field}: unknown value {value!r}; choose one of: "
                    f"{', '.join(allowed)}")
  return value


def check_width_mult(width_mult: float) -> float:
  """Returns `width_mult` if it is > 0, else raises UserError."""
  if not width_mult > 0:
    raise UserError(f'model.width_mult: must be > 0 (1.0 is the paper\'s width), got {width_mult}')
  return width_mult


def check_dropout_rate(rate: float) -> float:
  """Returns `rate` if it is in [0, 1), else raises UserError."""
  if not 0.0 <= rate < 1.0:
    raise UserError(f'model.dropout_rate: must be in [0, 1), got {rate}')
  return rate


def activation(name: str) -> Callable[[Array], Array]:
  """The activation function called `name` (relu | mish | swish)."""
  return ACTIVATIONS[check_choice('activation', name)]


# --- Init and BatchNorm conventions of the two frameworks the seeds were written in.
# Keras: glorot-uniform conv and Dense kernels, BN momentum 0.99 and epsilon 1e-3.
# PyTorch (seed B): conv weights normal(0, sqrt(2 / (k*k*out))) (kaiming fan_out), Linear weights
# nn.Linear's default U(+-1/sqrt(fan_in)), zero biases, BN momentum 0.1 (flax 0.9), epsilon 1e-5.
_CONV_INIT = {
    'keras': nn.initializers.glorot_uniform(),
    'torch': nn.initializers.variance_scaling(2.0, 'fan_out', 'normal'),
}
_DENSE_INIT = {
    'keras': nn.initializers.glorot_uniform(),
    'torch': nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform'),
}
_BN_MOMENTUM_EPSILON = {'keras': (0.99, 1e-3), 'torch': (0.9, 1e-5)}


def conv_def(convention: str, dtype: Any) -> ModuleDef:
  """`nn.Conv` with no bias, SAME padding and the convention's kernel init.

  Flax's SAME pads (0, 1) for a 3x3 stride-2 conv on an even size, exactly as TF does.
  """
  return functools.partial(
      nn.Conv, use_bias=False, padding='SAME', dtype=dtype,
      kernel_init=_CONV_INIT[check_choice('convention', convention)])


def dense_def(convention: str, dtype: Any) -> ModuleDef:
  """`nn.Dense` with a zero bias and the convention's kernel init."""
  return functools.partial(
      nn.Dense, dtype=dtype, bias_init=nn.initializers.zeros,
      kernel_init=_DENSE_INIT[check_choice('convention', convention)])


def norm_def(convention: str, dtype: Any, train: bool) -> ModuleDef:
  """`nn.BatchNorm` with the convention's momentum and epsilon; statistics stay float32."""
  momentum, epsilon = _BN_MOMENTUM_EPSILON[check_choice('convention', convention)]
  return functools.partial(
      nn.BatchNorm, use_running_average=not train, momentum=momentum, epsilon=epsilon,
      dtype=dtype)


class InstanceBatchNorm(nn.Module):
  """IBN-a's norm (Pan et al. 2018, "Two at Once", Sec. 3.2; official `IBN` module):
  InstanceNorm (affine) on the first int(C * ratio) channels, BatchNorm on the rest.

  InstanceNorm normalises each sample's channel over its own H x W, in training and inference
  alike, so it keeps no running statistics: only the BN channels add `batch_stats`. Its affine
  pair takes the place of BN's, so the parameter count equals that of a plain BN.
  """
  batch_norm: ModuleDef
  ratio: float = 0.5
  epsilon: float = 1e-5
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array) -> Array:
    split = int(x.shape[-1] * self.ratio)
    instance = nn.InstanceNorm(epsilon=self.epsilon, dtype=self.dtype)(x[..., :split])
    return jnp.concatenate([instance, self.batch_norm()(x[..., split:])], axis=-1)


def ibn_def(convention: str, dtype: Any, train: bool, ratio: float = 0.5) -> ModuleDef:
  """`InstanceBatchNorm` whose BN half is `norm_def`'s and whose IN uses the same epsilon."""
  _, epsilon = _BN_MOMENTUM_EPSILON[check_choice('convention', convention)]
  return functools.partial(InstanceBatchNorm, batch_norm=norm_def(convention, dtype, train),
                           ratio=ratio, epsilon=epsilon, dtype=dtype)


class PreActConv(nn.Module):
  """BN -> act -> Conv (no bias): the pre-activation conv unit."""
  features: int
  kernel_size: tuple[int, int] = (3, 3)
  strides: int = 1
  feature_group_count: int = 1
  conv: ModuleDef = nn.Conv
  norm: ModuleDef = nn.BatchNorm
  act: Callable[[Array], Array] = jax.nn.relu

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = self.act(self.norm()(x))
    return self.conv(self.features, self.kernel_size, (self.strides, self.strides),
                     feature_group_count=self.feature_group_count)(x)


class ConvNormAct(nn.Module):
  """Conv (no bias) -> BN -> act: the post-activation unit of the Inception networks
  (torchvision's `BasicConv2d`, timm's `ConvNormAct`).

  `padding` is 'SAME' or 'VALID' (or explicit pairs); at stride 1 with an odd kernel, Flax's
  SAME pads k // 2 on every side, exactly as PyTorch's `padding=k // 2`.
  """
  features: int
  kernel_size: tuple[int, int] = (3, 3)
  strides: int = 1
  padding: Any = 'SAME'
  conv: ModuleDef = nn.Conv
  norm: ModuleDef = nn.BatchNorm
  act: Callable[[Array], Array] = jax.nn.relu

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = self.conv(self.features, self.kernel_size, (self.strides, self.strides),
                  padding=self.padding)(x)
    return self.act(self.norm()(x))


def conv_norm_act_def(convention: str, dtype: Any, train: bool, **norm_fields: Any) -> ModuleDef:
  """`ConvNormAct` with the convention's conv and BN; `norm_fields` override BN's (epsilon)."""
  norm = functools.partial(norm_def(convention, dtype, train), **norm_fields)
  return functools.partial(ConvNormAct, conv=conv_def(convention, dtype), norm=norm)


# (features, kernel_size[, strides, padding]) of one ConvNormAct of a branch.
ConvSpec = tuple[Any, ...]


class Branches(nn.Module):
  """Base of the multi-branch (Inception) modules: `branch` chains ConvNormAct units.

  A branch of one conv is named `name`; the convs of a longer one `name_i`, counting from
  `first_index` (1 in torchvision's names, 0 in timm's).
  """
  width_mult: float
  unit: ModuleDef  # a ConvNormAct def
  first_index = 1  # a class constant, not a field

  def branch(self, x: Array, name: str, *specs: ConvSpec) -> Array:
    """Applies the convs `specs` in turn, each with its channels times `width_mult`."""
    for i, (features, *rest) in enumerate(specs):
      conv_name = name if len(specs) == 1 else f'{name}_{i + self.first_index}'
      x = self.unit(scale_width(features, self.width_mult), *rest, name=conv_name)(x)
    return x


def classifier_head(x: Array, num_classes: int, dropout_rate: float, train: bool, dtype: Any,
                    name: str = 'fc') -> Array:
  """Global average pool -> dropout (the 'dropout' rng stream) -> Dense with PyTorch's init;
  float32 logits."""
  x = jnp.mean(x, axis=(1, 2))
  x = nn.Dropout(check_dropout_rate(dropout_rate), deterministic=not train)(x)
  return dense_def('torch', dtype)(num_classes, name=name)(x).astype(jnp.float32)


def check_stage_sizes(stage_sizes: Sequence[int], stages: Sequence[str]) -> None:
  """Raises UserError unless `stage_sizes` holds one module count >= 0 per stage."""
  if len(stage_sizes) != len(stages) or any(n < 0 for n in stage_sizes):
    raise UserError(f'model.stage_sizes: {len(stages)} module counts >= 0 '
                    f'({", ".join(stages)}), got {tuple(stage_sizes)!r}')


def avg_pool_same(x: Array, strides: int) -> Array:
  """AvgPool (s x s)/s with TF SAME padding, averaging only real pixels at a ragged edge.

  On even sizes this is a plain 2x2 pool; on odd sizes (Fashion-MNIST's 7x7) it gives
  ceil(n/2) outputs, matching the stride-2 SAME conv on the residual branch.
  """
  if all(d % strides == 0 for d in x.shape[1:3]):
    return nn.avg_pool(x, (strides, strides), (strides, strides))
  return nn.avg_pool(x, (strides, strides), (strides, strides), padding='SAME',
                     count_include_pad=False)


def pad_shortcut(x: Array, features: int, strides: int, side: str = 'both') -> Array:
  """Parameter-free shortcut: AvgPool when strided, then zero channels up to `features`.

  side='both' (seed A's ResNetV2) splits the zeros over both ends of the channel axis, the extra
  one after; side='end' (PyramidNet) appends them all after the input's channels.
  """
  if side not in PAD_SIDES:
    raise ValueError(f'pad_shortcut: side must be one of {PAD_SIDES}, got {side!r}')
  if strides > 1:
    x = avg_pool_same(x, strides)
  extra = features - x.shape[-1]
  if extra < 0:
    raise ValueError(f'zero-pad shortcut cannot shrink {x.shape[-1]} channels to {features}')
  if extra:
    before = extra // 2 if side == 'both' else 0
    x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (before, extra - before)))
  return x


class Shortcut(nn.Module):
  """The shortcut of the post-activation ResNets: the identity where the unit keeps the shape,
  else a projection, 1x1 conv (no bias) -> BN.

  Plain projection (He et al. 2016, torchvision): the 1x1 conv carries the stride, so it reads
  one pixel in s*s. `avg_down` (ResNet-D, He et al. 2019, "Bag of Tricks", Sec. 4.1; ResNeSt,
  TResNet): an AvgPool (s x s)/s first (ceil mode, averaging only real pixels), the conv at
  stride 1.
  """
  features: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  avg_down: bool = False

  @nn.compact
  def __call__(self, x: Array) -> Array:
    strides = self.strides
    if strides == 1 and x.shape[-1] == self.features:
      return x
    if self.avg_down and strides > 1:
      x, strides = avg_pool_same(x, strides), 1
    x = self.conv(self.features, (1, 1), (strides, strides), name='conv')(x)
    return self.norm(name='norm')(x)


def max_pool_3x3(x: Array) -> Array:
  """MaxPool 3x3/2 with PyTorch's padding of 1 (padded pixels never win): the ImageNet stem's."""
  return nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))


def scale_width(features: int, width_mult: float) -> int:
  """int(features * width_mult), at least 1: the channels of a conv in a thinned network."""
  return max(1, int(features * width_mult))


def upsample_nearest(x: Array, factor: int) -> Array:
  """(N, H, W, C) -> (N, factor*H, factor*W, C), every pixel repeated factor x factor times.

  Seed A's CIFAR adaptation of the ImageNet-layout networks (MobileNetV2, MobileNetV3): the
  network is unchanged and its 32x32 input is upsampled like Keras' `UpSampling2D` (SPEC §5).
  Raises UserError (field `model.upsample`) unless `factor` is a positive integer.
  """
  if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
    raise UserError(f'model.upsample: must be a positive integer (3 gives 96 px from 32), '
                    f'got {factor!r}')
  if factor == 1:
    return x
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
  """Rounds to the nearest multiple of `divisor` (ties up), never below 90% of `value`.

  The MobileNet/EfficientNet rule, used for the SE hidden width: d(64/16) = 8, d(512/16) = 32.
  """
  min_value = divisor if min_value is None else min_value
  rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
  if rounded < 0.9 * value:
    rounded += divisor
  return rounded


class SqueezeExcite(nn.Module):
  """Squeeze-and-Excitation (Hu et al. 2018): GAP -> Dense(d) -> act -> Dense(C) -> gate.

  The hidden width d is `hidden` when given (TResNet and the MBConv families fix it from the
  block's input or expanded width, each its own way), else make_divisible(C / reduction, divisor).
  MobileNetV3 and NAT gate with `jax.nn.hard_sigmoid`; everything else with the sigmoid.
  """
  reduction: int = 16
  divisor: int = 8
  dense: ModuleDef = nn.Dense
  act: Callable[[Array], Array] = jax.nn.relu
  hidden: int | None = None
  gate: Callable[[Array], Array] = jax.nn.sigmoid

  @nn.compact
  def __call__(self, x: Array) -> Array:
    channels = x.shape[-1]
    hidden = self.hidden or make_divisible(channels / self.reduction, self.divisor)
    s = jnp.mean(x, axis=(1, 2), keepdims=True)
    s = self.act(self.dense(hidden)(s))
    s = self.gate(self.dense(channels)(s))
    return x * s


def survival_probs(num_blocks: int, final_survival_prob: float) -> list[float]:
  """p_l = 1 - (l/L)(1 - p_L) for l = 1..L: linear from ~1 to p_L at the last block."""
  return [1.0 - (l / num_blocks) * (1.0 - final_survival_prob)
          for l in range(1, num_blocks + 1)]


class StochasticDepth(nn.Module):
  """Residual add with a randomly dropped branch: returns shortcut + (dropped) branch.

  `batch` (seed A, Huang et al. 2016): one draw per call shared by the whole batch; kept with
  probability p; inference gives shortcut + p * branch.
  `sample` (timm drop_path): a Bernoulli(p) per sample, kept branches scaled by 1/p; inference
  gives shortcut + branch.
  Randomness comes from the 'drop_path' rng stream, and only when training with p < 1.
  """
  survival_prob: float = 1.0
  mode: str = 'batch'

  @nn.compact
  def __call__(self, shortcut: Array, branch: Array, train: bool) -> Array:
    p = self.survival_prob
    mode = check_choice('drop_path_mode', self.mode)
    if p >= 1.0:
      return shortcut + branch
    if not train:
      return shortcut + (p * branch if mode == 'batch' else branch)
    rng = self.make_rng('drop_path')
    if mode == 'batch':
      keep = jax.random.bernoulli(rng, p)
      return shortcut + keep.astype(branch.dtype) * branch
    keep = jax.random.bernoulli(rng, p, (branch.shape[0],) + (1,) * (branch.ndim - 1))
    return shortcut + branch * (keep.astype(branch.dtype) / jnp.asarray(p, branch.dtype))


class ShakeDrop(nn.Module):
  """ShakeDrop (Yamada et al. 2018, arXiv:1802.02375): scales a residual branch by a random,
  possibly negative, coefficient; returns the scaled branch (the caller adds the shortcut).

  Training: forward (b + a - b*a) * branch, backward (b + c - b*c) * gradient (`shake`), with the
  gate b ~ Bernoulli(p_l) ONE per call for the whole batch, a ~ U(-1, 1) and c ~ U(0, 1). A kept
  branch (b = 1) passes unchanged both ways; a "dropped" one is shaken. `level` sets what one
  (a, c) pair covers: 'image' (one per image, as the PyTorch ports of the method draw), 'pixel'
  (one per element, as the authors' Torch code draws) or 'batch'.
  Inference: the expectation E[b + a - b*a] = p_l, deterministic.
  Randomness comes from the 'shakedrop' rng stream, only when training.
  """
  survival_prob: float = 0.5
  level: str = 'image'

  @nn.compact
  def __call__(self, branch: Array, train: bool) -> Array:
    p = self.survival_prob
    level = check_choice('shakedrop_level', self.level)
    if not train:
      return branch * jnp.asarray(p, branch.dtype)
    gate_key, alpha_key, beta_key = jax.random.split(self.make_rng('shakedrop'), 3)
    gate = jax.random.bernoulli(gate_key, p).astype(jnp.float32)
    shape = {'image': (branch.shape[0],) + (1,) * (branch.ndim - 1), 'pixel': branch.shape,
             'batch': (1,) * branch.ndim}[level]
    alpha = jax.random.uniform(alpha_key, shape, minval=-1.0, maxval=1.0)
    beta = jax.random.uniform(beta_key, shape)
    return shake(branch, gate + alpha - gate * alpha, gate + beta - gate * beta)


@jax.custom_vjp
def shake(x: Array, forward_scale: Array, backward_scale: Array) -> Array:
  """`forward_scale * x` on the forward pass; the backward pass scales by `backward_scale`.

  The scales broadcast against `x` (e.g. shape (N, 1, 1, 1) for one value per image) and get no
  gradient. Shake-Shake (Gastaldi 2017) is shake(b1, a, b) + shake(b2, 1 - a, 1 - b); ShakeDrop
  (Yamada et al. 2018) is shake(branch, b + a - b*a, b + beta - b*beta).
  """
  return x * forward_scale.astype(x.dtype)


def _shake_fwd(x: Array, forward_scale: Array,
               backward_scale: Array) -> tuple[Array, tuple[Array, Array]]:
  return shake(x, forward_scale, backward_scale), (forward_scale, backward_scale)


def _shake_bwd(residuals: tuple[Array, Array], g: Array) -> tuple[Array, Array, Array]:
  forward_scale, backward_scale = residuals
  return (g * backward_scale.astype(g.dtype), jnp.zeros_like(forward_scale),
          jnp.zeros_like(backward_scale))


shake.defvjp(_shake_fwd, _shake_bwd)


def weight_decay_mask(params: Any, on: str) -> Any:
  """Boolean pytree over `params`: which leaves carry weight decay.

  on = 'all': every leaf (PyTorch's coupled weight_decay);
  'conv_kernels': 4-D `kernel` leaves (Keras `l2` on conv kernels, seed A), except convs whose
  module name ends in `NO_L2_SUFFIX`;
  'kernels': every `kernel` leaf, convs and Dense alike.
  A frozen leaf (name starting with `FROZEN_PREFIX`) never decays.
  """
  if on not in WEIGHT_DECAY_ON:
    raise UserError(f"optim.weight_decay_on: unknown value {on!r}; choose one of: "
                    f"{', '.join(WEIGHT_DECAY_ON)}")

  def decays(path: Sequence[Any], leaf: Any) -> bool:
    names = [getattr(k, 'key', getattr(k, 'name', str(k))) for k in path]
    if str(names[-1]).startswith(FROZEN_PREFIX):
      return False
    if on == 'all':
      return True
    if names[-1] != 'kernel':
      return False
    if on == 'kernels':
      return True
    return leaf.ndim == 4 and not any(str(n).endswith(NO_L2_SUFFIX) for n in names[:-1])

  return jax.tree_util.tree_map_with_path(decays, params)
