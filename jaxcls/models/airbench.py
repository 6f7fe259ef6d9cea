"""airbench94 (Jordan 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", arXiv 2404.00498,
section 3): the network of the fastest CIFAR-10 training recipes.

    whitening conv 2x2 (3 -> 24, frozen, no padding, trained bias) -> GELU
    -> 3 groups [conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU], widths 64/256/256
    -> max-pool 3 -> Dense 256 -> 10 (no bias) -> logits x 1/9

Easy to get wrong:
- The whitening filters come from DATA, not from a random init: the eigenvectors v_i of the
  (uncentred, as airbench estimates it) covariance of the 2x2 patches of 5,000 normalised training
  images, each scaled by 1/sqrt(lambda_i + 5e-4), and then the same filters negated, so the GELU
  after them keeps both signs. `AirBench.data_init` computes them (`jaxcls.train` calls it once,
  on a fresh start; a resumed run restores them from its checkpoint).
- They are frozen: the forward pass reads them through `lax.stop_gradient`, so no gradient
  reaches them, and `layers.weight_decay_mask` skips them (the leaf is `whiten/frozen_kernel`,
  see `layers.FROZEN_PREFIX`), so no optimizer moves them. They are stored in `params`, as
  PyTorch's `parameters()` holds them: airbench94's 1,971,640 params include these 288 frozen
  ones. The whitening bias IS trained (for the first 3 epochs, in `configs/airbench94.py`).
- The pool sits between the two convs of a group, so each group's first conv runs at the higher
  resolution: 31x31 -> 15x15 -> 7x7 -> 3x3 for a 32x32 input.
- BatchNorm: epsilon 1e-12, no scale (fixed at 1), a trained bias, momentum 0.6 in Flax's
  convention (PyTorch's 0.4). PyTorch's running variance is the unbiased batch estimate, Flax's
  the biased one: at batch 1024 x 225 pixels the difference is below 1e-5 relative.
- Every 3x3 conv starts as PyTorch's default (uniform +-1/sqrt(fan_in)) with its first C_in
  output filters replaced by identities (Dirac), so each group starts close to passing its input
  through. The Dense is PyTorch's default too.
- The final max-pool is taken over the whole remaining map: on the 3x3 map of a 32x32 input
  this is airbench's MaxPool2d(3); other input sizes and group counts still end in one vector.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxcls.errors import UserError
from jaxcls.models import layers
from jaxcls.models.registry import register_model

Array = jax.Array

# PyTorch's default Conv2d / Linear init: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)).
_TORCH_DEFAULT_INIT = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')
FROZEN_KERNEL = layers.FROZEN_PREFIX + 'kernel'  # the whitening filters' leaf name


def dirac_init(base: Any = _TORCH_DEFAULT_INIT) -> Any:
  """An HWIO conv initializer: `base`, with output filters o < min(C_in, C_out) replaced by
  identities (1 at the centre tap of input channel o, 0 elsewhere), as `torch.nn.init.dirac_`
  on the first C_in filters."""

  def init(key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
    kh, kw, c_in, c_out = shape
    n = min(c_in, c_out)
    identity = jnp.zeros((kh, kw, c_in, n), dtype).at[kh // 2, kw // 2, jnp.arange(n),
                                                      jnp.arange(n)].set(1)
    return base(key, shape, dtype).at[..., :n].set(identity)

  return init


def patch_covariance(images: Array, kernel_size: int) -> Array:
  """The (k*k*C, k*k*C) second moment E[p p^T] of every k x k patch p (stride 1, no padding) of
  NHWC `images`, with p flattened in (row, column, channel) order, i.e. as an HWIO kernel's
  first three axes. Not centred: airbench's estimate (the inputs are normalised already)."""
  _, h, w, c = images.shape
  k = kernel_size
  views = [images[:, i:h - k + 1 + i, j:w - k + 1 + j, :] for i in range(k) for j in range(k)]
  patches = jnp.stack(views, axis=-2).reshape(-1, k * k * c).astype(jnp.float32)
  return patches.T @ patches / patches.shape[0]


def whitening_filters(images: Array, kernel_size: int = 2, eps: float = 5e-4) -> Array:
  """The HWIO kernel (k, k, C, 2*k*k*C) of airbench's whitening conv for NHWC `images`.

  Filter i < k*k*C is v_i / sqrt(lambda_i + eps), the eigenvectors of `patch_covariance` by
  decreasing eigenvalue lambda_i; filter k*k*C + i is its negation. With eps = 0 the first half
  maps the patches to outputs of identity covariance.
  """
  c = images.shape[-1]
  eigenvalues, eigenvectors = jnp.linalg.eigh(patch_covariance(images, kernel_size))
  eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]  # decreasing
  filters = eigenvectors / jnp.sqrt(eigenvalues + eps)
  kernel = jnp.concatenate([filters, -filters], axis=1)
  return kernel.reshape(kernel_size, kernel_size, c, 2 * kernel_size**2 * c)


class Whitening(nn.Module):
  """A frozen k x k conv, no padding, with a trainable bias: `conv(x, stop_gradient(kernel)) + b`.

  The kernel's initial value is only a placeholder until `AirBench.data_init` sets the
  whitening filters.
  """
  kernel_size: int = 2
  strides: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    k, c = self.kernel_size, x.shape[-1]
    features = 2 * k * k * c
    kernel = self.param(FROZEN_KERNEL, _TORCH_DEFAULT_INIT, (k, k, c, features), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (features,), jnp.float32)
    y = lax.conv_general_dilated(x.astype(self.dtype),
                                 lax.stop_gradient(kernel).astype(self.dtype),
                                 (self.strides, self.strides), 'VALID',
                                 dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return y + bias.astype(self.dtype)


def max_pool(x: Array, window: int) -> Array:
  """Max-pool `window` x `window`, stride `window`, no padding (a ragged edge is dropped, as
  PyTorch's MaxPool2d floors: 31 -> 15).

  A reshape and a max rather than `nn.max_pool`: the same values, and XLA:CPU differentiates a
  max over axes with elementwise masks, where `reduce_window`'s select-and-scatter runs slower
  (airbench at widths 32/128/128: 295 against 242 img/s for the loss gradient). Between equal
  maxima the gradient is split evenly, not given to the first (a measure-zero difference).
  """
  n, h, w, c = x.shape
  h, w = h // window, w // window
  x = x[:, :h * window, :w * window]
  return x.reshape(n, h, window, w, window, c).max(axis=(2, 4))


class ConvGroup(nn.Module):
  """conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU (airbench's ConvGroup)."""
  features: int
  conv: Any
  norm: Any

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = self.conv(self.features, name='conv1')(x)
    x = max_pool(x, 2)
    x = nn.gelu(self.norm(name='norm1')(x), approximate=False)
    x = self.conv(self.features, name='conv2')(x)
    return nn.gelu(self.norm(name='norm2')(x), approximate=False)


class AirBench(nn.Module):
  """airbench94's network; widths and group count are knobs for smaller presets.

  Attributes:
    num_classes: outputs of the final (bias-free) Dense.
    widths: output channels of each ConvGroup; each group halves the resolution.
    whitening_kernel_size: k of the frozen k x k whitening conv (2*k*k*C_in output channels).
    whitening_stride: its stride; 2 (with k = 2) makes it a patchify stem that halves the
      resolution every later layer runs at (32x32 -> 16x16), about 4x cheaper (a CPU preset).
    whitening_eps: added to each eigenvalue before the 1/sqrt scaling of the whitening filters.
    whitening_images: how many leading train images `data_init` reads (airbench: 5,000).
    bn_momentum: running-statistics momentum, Flax convention (0.6 = PyTorch's 0.4).
    bn_epsilon: BatchNorm epsilon.
    logit_scale: multiplies the logits (airbench: 1/9).
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  widths: tuple[int, ...] = (64, 256, 256)
  whitening_kernel_size: int = 2
  whitening_stride: int = 1
  whitening_eps: float = 5e-4
  whitening_images: int = 5000
  bn_momentum: float = 0.6
  bn_epsilon: float = 1e-12
  logit_scale: float = 1.0 / 9.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    if not self.widths:
      raise UserError('model.widths: airbench needs at least one ConvGroup width')
    conv = lambda features, name: nn.Conv(  # pylint: disable=g-long-lambda
        features, (3, 3), padding='SAME', use_bias=False, kernel_init=dirac_init(),
        dtype=self.dtype, name=name)
    norm = lambda name: nn.BatchNorm(  # pylint: disable=g-long-lambda
        use_running_average=not train, momentum=self.bn_momentum, epsilon=self.bn_epsilon,
        use_scale=False, dtype=self.dtype, name=name)
    x = Whitening(self.whitening_kernel_size, self.whitening_stride, self.dtype,
                  name='whiten')(x)
    x = nn.gelu(x, approximate=False)
    for i, width in enumerate(self.widths):
      x = ConvGroup(width, conv, norm, name=f'group{i + 1}')(x)
    x = jnp.max(x, axis=(1, 2))
    x = nn.Dense(self.num_classes, use_bias=False, kernel_init=_TORCH_DEFAULT_INIT,
                 dtype=self.dtype, name='head')(x)
    return (x * self.logit_scale).astype(jnp.float32)

  @property
  def data_init_images(self) -> int:
    """How many leading train images `data_init` wants (normalised, not augmented)."""
    return self.whitening_images

  @nn.nowrap
  def data_init(self, variables: dict, images: Array) -> dict:
    """`variables` with the whitening filters of `images` (NHWC, normalised as the model's
    input) in place of the placeholder kernel. Called once on a fresh start (`jaxcls.train`)."""
    kernel = whitening_filters(images[:self.whitening_images], self.whitening_kernel_size,
                               self.whitening_eps)
    params = variables['params']
    whiten = {**params['whiten'], FROZEN_KERNEL: kernel}
    return {**variables, 'params': {**params, 'whiten': whiten}}


@register_model
def airbench94() -> AirBench:
  """airbench94: widths 64/256/256; on 32x32x3, 1,971,640 params (288 of them the frozen
  whitening filters) + 2,304 batch stats, 118.15M MACs."""
  return AirBench()
