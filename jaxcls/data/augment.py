"""Device-side augmentation: pad-and-crop, horizontal flip, normalisation, Cutout; the views of
test-time augmentation.

Every function takes a whole NHWC batch and an explicit PRNG key, draws its per-sample values as
arrays over the batch (no Python loop over samples) and runs inside `jax.jit`. The draws use
JAX's partitionable threefry (the default since JAX 0.5), so a batch sharded over several devices
gets exactly the numbers it would get on one, and the ops here need no communication.

The order follows the CIFAR recipes (torchvision `RandomCrop(32, padding=4)` then
`RandomHorizontalFlip`, then `Normalize`, then Cutout):

- Pad-and-crop and flip work on the raw 0-255 pixels, so `pad_mode='zero'` pads with black
  (torchvision's default), which after normalisation is -mean/std, not 0. `symmetric` (TF
  SYMMETRIC, seed A) repeats the edge pixel; `reflect` (np/torch 'reflect') does not.
- Cutout (DeVries & Taylor 2017, arXiv:1708.04552) zeroes a size x size square AFTER
  normalisation, i.e. fills it with the mean. Its centre is uniform over the whole image and the
  square is clipped at the borders, so it is often smaller than size x size; `inside=True` keeps
  the whole square in the image instead. Rows run from centre - size // 2 for `size` rows, which
  is the official code for even sizes (the official code drops a row for odd sizes).
- Flip `'alternating'` is airbench's (Jordan 2024, arXiv 2404.00498, sec. 3.6): a random half of
  the images is mirrored in epoch 0, and every image's choice inverts on each odd epoch, so each
  image is seen both ways within any two epochs. The epoch-0 choice is a function of
  (image_key, image index), so no per-image state is kept: the step passes the batch's indices
  into the train split and its epoch.
- airbench's "translate by up to r pixels with reflect padding" is pad-and-crop here:
  `random_crop(padding=r, pad_mode='reflect')` draws each offset uniform over {-r..r}^2 as
  airbench's `batch_crop` does; `augment.translate` is an alias for those two fields.
- Test-time augmentation (`tta_views`) is airbench94's: logits averaged over the image and its
  mirror, and for 'flip_translate' also over the mirror-averages of the image shifted by one
  pixel down-right and up-left (reflect padding), weighted 1/2 for the unshifted pair and 1/4 for
  each shifted pair.
"""

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcls.errors import UserError

PAD_MODES = ('zero', 'reflect', 'symmetric')
FLIPS = ('none', 'random', 'alternating')
TTA_MODES = ('none', 'flip', 'flip_translate')
_JNP_PAD_MODE = {'zero': 'constant', 'reflect': 'reflect', 'symmetric': 'symmetric'}

AugmentFn = Callable[..., jax.Array]  # (key, images, index=None, epoch=None) -> images


def _check_batch(images: jax.Array) -> None:
  if images.ndim != 4:
    raise ValueError(f'expected a batch of NHWC images, got shape {images.shape}')


def _check_pad_mode(pad_mode: Any) -> None:
  if pad_mode not in PAD_MODES:
    raise UserError(f"augment.pad_mode: unknown pad mode {pad_mode!r}; choose one of: "
                    f"{', '.join(PAD_MODES)}")


def _check_crop_padding(padding: int, pad_mode: str, height: int, width: int) -> None:
  _check_nonnegative_int(padding, 'augment.crop_padding')
  _check_pad_mode(pad_mode)
  # A mirror needs a source pixel for each padded one: np 'reflect' skips the edge pixel.
  limit = min(height, width) - (1 if pad_mode == 'reflect' else 0)
  if padding > limit:
    raise UserError(f'augment.crop_padding: {padding} is too large for {height}x{width} images '
                    f"with pad_mode {pad_mode!r}; use at most {limit}")


def random_crop(key: jax.Array, images: jax.Array, padding: int,
                pad_mode: str = 'zero') -> jax.Array:
  """Pads each side by `padding` and crops a window of the original size at a random offset.

  Offsets are uniform over {0..2*padding}^2, independently per sample.
  """
  _check_batch(images)
  batch, height, width, channels = images.shape
  _check_crop_padding(padding, pad_mode, height, width)
  if padding == 0:
    return images
  padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)),
                   mode=_JNP_PAD_MODE[pad_mode])
  offset_y, offset_x = jax.random.randint(key, (2, batch), 0, 2 * padding + 1)
  # A vmap'd `dynamic_slice` measured the fastest crop on CPU once Cutout and mixing follow in
  # the same jit (a gather straight from the unpadded image is as fast alone but ~3x slower in
  # that company, as XLA re-fuses it); it is a batched gather that partitions along the batch.
  def window(image, y, x):
    return jax.lax.dynamic_slice(image, (y, x, 0), (height, width, channels))

  return jax.vmap(window)(padded, offset_y, offset_x)


def mirror(images: jax.Array, where: jax.Array | bool = True) -> jax.Array:
  """Mirrors left-right the images of an NHWC batch where `where` (one bool per image) holds."""
  return jnp.where(jnp.reshape(where, (-1, 1, 1, 1)), images[:, :, ::-1], images)


def random_flip(key: jax.Array, images: jax.Array) -> jax.Array:
  """Mirrors each image left-right with probability 1/2."""
  _check_batch(images)
  return mirror(images, jax.random.bernoulli(key, 0.5, (images.shape[0],)))


def alternating_flip(image_key: jax.Array, images: jax.Array, index: jax.Array,
                     epoch: jax.Array) -> jax.Array:
  """airbench's alternating flip: image `index[n]` is mirrored in `epoch` iff its epoch-0 coin
  (Bernoulli(1/2) from `fold_in(image_key, index)`, fixed for the run) XOR the epoch is odd."""
  _check_batch(images)
  first = jax.vmap(lambda i: jax.random.bernoulli(jax.random.fold_in(image_key, i)))(index)
  return mirror(images, first ^ (epoch % 2 == 1))


def translate(images: jax.Array, dy: int, dx: int, pad_mode: str = 'reflect') -> jax.Array:
  """Shifts every image `dy` pixels down and `dx` right (negative: up, left), filling the
  uncovered border from `pad_mode` padding."""
  _check_batch(images)
  _, height, width, _ = images.shape
  pad = max(abs(dy), abs(dx))
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=_JNP_PAD_MODE[pad_mode])
  return padded[:, pad - dy:pad - dy + height, pad - dx:pad - dx + width]


def tta_views(images: jax.Array, mode: str) -> list[tuple[float, jax.Array]]:
  """`[(weight, view), ...]` of test-time augmentation `mode`; the weights sum to 1.

  'none': the images. 'flip': them and their mirrors, 1/2 each. 'flip_translate' (airbench94's
  `tta_level=2`): 1/2 on the flip pair of the images, 1/4 on the flip pair of the images
  translated by (+1, +1) and 1/4 on that of (-1, -1), reflect-padded: six views.
  """
  if mode not in TTA_MODES:
    raise UserError(f"eval.tta: unknown mode {mode!r}; choose one of: {', '.join(TTA_MODES)}")
  if mode == 'none':
    return [(1.0, images)]
  pair = lambda x, weight: [(weight / 2, x), (weight / 2, mirror(x))]
  if mode == 'flip':
    return pair(images, 1.0)
  return (pair(images, 0.5) + pair(translate(images, 1, 1), 0.25)
          + pair(translate(images, -1, -1), 0.25))


def normalize(images: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
  """(images - mean) / std per channel, in float32; mean and std are on the pixels' scale."""
  mean = jnp.asarray(mean, jnp.float32)
  std = jnp.asarray(std, jnp.float32)
  return (images.astype(jnp.float32) - mean) / std


def _check_cutout(size: int, prob: float, inside: bool, height: int, width: int) -> None:
  _check_nonnegative_int(size, 'augment.cutout_size')
  _check_probability(prob, 'augment.cutout_prob')
  if inside and size > min(height, width):
    raise UserError(f'augment.cutout_size: {size} does not fit inside {height}x{width} images '
                    f'(augment.cutout_inside=True); use at most {min(height, width)}')


def cutout(key: jax.Array, images: jax.Array, size: int, prob: float = 1.0,
           inside: bool = False) -> jax.Array:
  """Sets a size x size square of each image to 0, with probability `prob` per sample.

  `inside=False` (the paper): integer centre uniform over [0, H) x [0, W), square clipped at the
  borders. `inside=True`: the square lies wholly in the image, its top-left corner uniform over
  {0..H-size} x {0..W-size}.
  """
  _check_batch(images)
  batch, height, width, _ = images.shape
  _check_cutout(size, prob, inside, height, width)
  if size == 0 or prob == 0:
    return images
  key_centre_y, key_centre_x, key_apply = jax.random.split(key, 3)
  if inside:
    top = jax.random.randint(key_centre_y, (batch,), 0, height - size + 1)
    left = jax.random.randint(key_centre_x, (batch,), 0, width - size + 1)
  else:
    top = jax.random.randint(key_centre_y, (batch,), 0, height) - size // 2
    left = jax.random.randint(key_centre_x, (batch,), 0, width) - size // 2
  apply = jax.random.bernoulli(key_apply, prob, (batch,))
  # Comparisons against iotas clip the square at the borders for free.
  rows = jnp.arange(height)[None, :]
  cols = jnp.arange(width)[None, :]
  in_rows = (rows >= top[:, None]) & (rows < top[:, None] + size) & apply[:, None]
  in_cols = (cols >= left[:, None]) & (cols < left[:, None] + size)
  inside_square = in_rows[:, :, None, None] & in_cols[:, None, :, None]
  return jnp.where(inside_square, jnp.zeros((), images.dtype), images)


def _check_nonnegative_int(value: Any, field: str) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
    raise UserError(f'{field}: must be a non-negative integer (0 disables it), got {value!r}')


def _check_probability(value: Any, field: str) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
      0.0 <= value <= 1.0):
    raise UserError(f'{field}: must be a probability in [0, 1], got {value!r}')


def _check_stats(mean: Sequence[float], std: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
  mean = np.asarray(mean, np.float64)
  std = np.asarray(std, np.float64)
  if mean.ndim != 1 or std.shape != mean.shape:
    raise UserError(f'augment.mean / augment.std: need one value per channel each, got '
                    f'{mean.tolist()} and {std.tolist()}')
  if not np.all(np.isfinite(mean)) or not np.all(std > 0) or not np.all(np.isfinite(std)):
    raise UserError(f'augment.std: every channel needs a finite std > 0, got {std.tolist()} '
                    f'(mean {mean.tolist()})')
  return mean, std


def _check_channels(images: jax.Array, mean: np.ndarray) -> None:
  if images.shape[-1] != mean.shape[0]:
    raise UserError(f'augment.mean / augment.std: {mean.shape[0]} channels given, but the '
                    f'images have {images.shape[-1]}; give one value per channel')


def make_augment(augment_config: Any, mean: Sequence[float], std: Sequence[float],
                 image_key: jax.Array | None = None) -> AugmentFn:
  """Builds `augment(key, uint8 images, index=None, epoch=None) -> float32 normalised images`
  from `config.augment`.

  Reads `crop_padding` (0: off), `pad_mode`, `translate` (set: crop_padding=translate with
  reflect padding), `flip` (none | random | alternating), `cutout_size` (0: off), `cutout_prob`
  and `cutout_inside`. `mean` and `std` are per channel on the 0-255 scale. The alternating flip
  needs the run's `image_key` here and each call's `index` (rows of the train split, (batch,))
  and `epoch` (a scalar). Values that do not depend on the image size are checked here; the rest
  when the returned function is first traced.
  """
  padding = augment_config.crop_padding
  pad_mode = augment_config.pad_mode
  if augment_config.get('translate') is not None:
    padding, pad_mode = augment_config.translate, 'reflect'
    _check_nonnegative_int(padding, 'augment.translate')
  flip = augment_config.flip
  size = augment_config.cutout_size
  prob = augment_config.cutout_prob
  inside = augment_config.cutout_inside
  _check_nonnegative_int(padding, 'augment.crop_padding')
  _check_pad_mode(pad_mode)
  if flip not in FLIPS:
    raise UserError(f"augment.flip: unknown flip {flip!r}; choose one of: {', '.join(FLIPS)}")
  if flip == 'alternating' and image_key is None:
    raise ValueError("augment.flip='alternating' needs the run's image_key")
  if not isinstance(inside, (bool, np.bool_)):
    raise UserError(f'augment.cutout_inside: must be True or False, got {inside!r}')
  _check_nonnegative_int(size, 'augment.cutout_size')
  _check_probability(prob, 'augment.cutout_prob')
  mean, std = _check_stats(mean, std)

  def augment(key: jax.Array, images: jax.Array, index: jax.Array | None = None,
              epoch: jax.Array | None = None) -> jax.Array:
    _check_batch(images)
    _check_channels(images, mean)
    # One sub-key per op, whether it is on or not, so turning one op on or off leaves the
    # others' draws unchanged.
    key_crop, key_flip, key_cutout = jax.random.split(key, 3)
    images = random_crop(key_crop, images, padding, pad_mode)
    if flip == 'random':
      images = random_flip(key_flip, images)
    elif flip == 'alternating':
      if index is None or epoch is None:
        raise ValueError("augment.flip='alternating' needs each batch's index and epoch")
      images = alternating_flip(image_key, images, index, epoch)
    images = normalize(images, mean, std)
    return cutout(key_cutout, images, size, prob, inside)

  return augment


def make_eval_transform(mean: Sequence[float],
                        std: Sequence[float]) -> Callable[[jax.Array], jax.Array]:
  """Builds `transform(uint8 images) -> float32 normalised images` for evaluation."""
  mean, std = _check_stats(mean, std)

  def transform(images: jax.Array) -> jax.Array:
    _check_channels(images, mean)
    return normalize(images, mean, std)

  return transform


def channel_stats(images: np.ndarray,
                  chunk_size: int = 1024) -> tuple[tuple[float, ...], tuple[float, ...]]:
  """Per-channel mean and (population) std of a (N, ..., C) pixel array, on the pixels' scale.

  Accumulates sums and sums of squares in float64 over chunks of `chunk_size` images, so a
  50,000-image split never needs a float copy of itself. For uint8 pixels every partial sum is an
  integer below 2**53, hence exact.
  """
  images = np.asarray(images)
  if images.ndim < 2 or images.shape[0] == 0:
    raise ValueError(f'channel_stats needs a non-empty (N, ..., C) array, got {images.shape}')
  channels = images.shape[-1]
  total = np.zeros(channels, np.float64)
  total_sq = np.zeros(channels, np.float64)
  for start in range(0, images.shape[0], chunk_size):
    chunk = images[start:start + chunk_size].reshape(-1, channels).astype(np.float64)
    total += chunk.sum(axis=0)
    total_sq += np.square(chunk).sum(axis=0)
  count = images.size // channels
  mean = total / count
  var = np.maximum(total_sq / count - np.square(mean), 0.0)
  return tuple(float(m) for m in mean), tuple(float(s) for s in np.sqrt(var))
