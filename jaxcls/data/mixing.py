"""Sample mixing on the device: Mixup and CutMix, with one-hot and smoothed targets.

- Mixup (Zhang et al. 2018, arXiv:1710.09412): x = l*x_i + (1-l)*x_j and the same for the
  targets, with l ~ Beta(alpha, alpha).
- CutMix (Yun et al. 2019, arXiv:1905.04899): a box of side ratio sqrt(1-l) is pasted from the
  partner, and the targets are mixed by the area ACTUALLY pasted: a box clipped at the border
  covers less than 1-l of the image, so l is recomputed from the clipped box.

Both draw l, the box and whether to mix at all once per sample (the papers' code draws one l per
batch), and pair sample i with sample perm[i] of one random permutation of the batch. A sample
that is not mixed keeps l = 1 and its own target. Targets are one-hot, label-smoothed with
`optax.smooth_labels` before mixing.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcls.errors import UserError

MIX_NAMES = ('none', 'mixup', 'cutmix')
CUTMIX_BOXES = ('center', 'corner')

MixFn = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


def _draw_lambda(key: jax.Array, batch: int, alpha: float, prob: float) -> jax.Array:
  key_lambda, key_apply = jax.random.split(key)
  if isinstance(alpha, (int, float)) and alpha == 1:
    # Beta(1, 1) is U(0, 1). The gamma sampler behind `jax.random.beta` is a rejection loop;
    # skipping it makes CutMix at its usual alpha = 1 about a third cheaper on CPU.
    lam = jax.random.uniform(key_lambda, (batch,))
  else:
    lam = jax.random.beta(key_lambda, alpha, alpha, (batch,))
  apply = jax.random.bernoulli(key_apply, prob, (batch,))
  return jnp.where(apply, lam, 1.0)


def mixup(key: jax.Array, images: jax.Array, targets: jax.Array, alpha: float,
          prob: float = 1.0) -> tuple[jax.Array, jax.Array]:
  """Mixes each sample with probability `prob` with its partner, l ~ Beta(alpha, alpha).

  images: float (B, H, W, C); targets: float (B, K). Returns both mixed with the same l.
  """
  key_perm, key_lambda = jax.random.split(key)
  batch = images.shape[0]
  perm = jax.random.permutation(key_perm, batch)
  lam = _draw_lambda(key_lambda, batch, alpha, prob).astype(images.dtype)
  lam_images = lam[:, None, None, None]
  images = lam_images * images + (1 - lam_images) * images[perm]
  lam_targets = lam[:, None].astype(targets.dtype)
  targets = lam_targets * targets + (1 - lam_targets) * targets[perm]
  return images, targets


def _box(key: jax.Array, lam: jax.Array, height: int, width: int,
         box: str) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """Per-sample box [top, bottom) x [left, right), clipped to the image."""
  key_y, key_x = jax.random.split(key)
  batch = lam.shape[0]
  ratio = jnp.sqrt(1.0 - lam)
  cut_h = jnp.floor(height * ratio).astype(jnp.int32)
  cut_w = jnp.floor(width * ratio).astype(jnp.int32)
  if box == 'center':
    top = jax.random.randint(key_y, (batch,), 0, height) - cut_h // 2
    left = jax.random.randint(key_x, (batch,), 0, width) - cut_w // 2
  else:
    top = jax.random.randint(key_y, (batch,), 0, height)
    left = jax.random.randint(key_x, (batch,), 0, width)
  bottom = jnp.clip(top + cut_h, 0, height)
  right = jnp.clip(left + cut_w, 0, width)
  return jnp.clip(top, 0, height), bottom, jnp.clip(left, 0, width), right


def cutmix(key: jax.Array, images: jax.Array, targets: jax.Array, alpha: float,
           prob: float = 1.0, box: str = 'center') -> tuple[jax.Array, jax.Array]:
  """Pastes a box from each sample's partner, with probability `prob`; l ~ Beta(alpha, alpha).

  The box has sides floor(H*sqrt(1-l)) x floor(W*sqrt(1-l)). `box='center'` (the paper): centre
  uniform over the image, starting side // 2 before it (the official code's `cx - cut_w // 2`,
  but keeping the full side when it is odd), clipped at every border. `box='corner'` (seed A):
  top-left corner uniform over the image, clipped at the bottom and right edges. Targets are
  mixed with l = 1 - (pasted area) / (H*W).
  """
  if box not in CUTMIX_BOXES:
    raise UserError(f"mix.cutmix_box: unknown box {box!r}; choose one of: "
                    f"{', '.join(CUTMIX_BOXES)}")
  key_perm, key_lambda, key_box = jax.random.split(key, 3)
  batch, height, width = images.shape[:3]
  perm = jax.random.permutation(key_perm, batch)
  lam = _draw_lambda(key_lambda, batch, alpha, prob)
  top, bottom, left, right = _box(key_box, lam, height, width, box)
  rows = jnp.arange(height)[None, :]
  cols = jnp.arange(width)[None, :]
  in_rows = (rows >= top[:, None]) & (rows < bottom[:, None])
  in_cols = (cols >= left[:, None]) & (cols < right[:, None])
  in_box = in_rows[:, :, None, None] & in_cols[:, None, :, None]
  images = jnp.where(in_box, images[perm], images)
  area = (bottom - top) * (right - left)
  lam = (1.0 - area / (height * width))[:, None].astype(targets.dtype)
  targets = lam * targets + (1 - lam) * targets[perm]
  return images, targets


def _check_probability(value: Any, field: str) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
      0.0 <= value <= 1.0):
    raise UserError(f'{field}: must be a probability in [0, 1], got {value!r}')


def make_mix(mix_config: Any, num_classes: int, label_smoothing: float = 0.0) -> MixFn:
  """Builds `mix(key, images, int labels) -> (images, float32 targets (B, num_classes))`.

  Reads `config.mix`: `name` (none | mixup | cutmix), `alpha`, `prob`, `cutmix_box`. Targets are
  one-hot, smoothed by `label_smoothing` (`config.label_smoothing`), then mixed; rows sum to 1.
  """
  name = mix_config.name
  alpha = mix_config.alpha
  prob = mix_config.prob
  box = mix_config.cutmix_box
  if name not in MIX_NAMES:
    raise UserError(f"mix.name: unknown mix {name!r}; choose one of: {', '.join(MIX_NAMES)}")
  if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) or not alpha > 0:
    raise UserError(f'mix.alpha: must be > 0 (Beta(alpha, alpha); 1 gives U(0, 1)), got '
                    f"{alpha!r}; use mix.name='none' to turn mixing off")
  _check_probability(prob, 'mix.prob')
  if box not in CUTMIX_BOXES:
    raise UserError(f"mix.cutmix_box: unknown box {box!r}; choose one of: "
                    f"{', '.join(CUTMIX_BOXES)}")
  if isinstance(label_smoothing, bool) or not isinstance(
      label_smoothing, (int, float, np.number)) or not 0.0 <= label_smoothing < 1.0:
    raise UserError(f'label_smoothing: must be in [0, 1), got {label_smoothing!r}')

  def mix(key: jax.Array, images: jax.Array,
          labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    targets = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    if label_smoothing:
      targets = optax.smooth_labels(targets, label_smoothing)
    if name == 'mixup':
      return mixup(key, images, targets, alpha, prob)
    if name == 'cutmix':
      return cutmix(key, images, targets, alpha, prob, box)
    return images, targets

  return mix
