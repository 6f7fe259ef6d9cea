"""Tests for jaxcls.data.augment: exact windows, uniform draws, Cutout areas, config checks."""

import tracemalloc

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import default
from jaxcls.data import augment as augment_lib
from jaxcls.errors import UserError

NP_PAD_MODE = {'zero': 'constant', 'reflect': 'reflect', 'symmetric': 'symmetric'}

random_crop = jax.jit(augment_lib.random_crop, static_argnames=('padding', 'pad_mode'))
random_flip = jax.jit(augment_lib.random_flip)
cutout = jax.jit(augment_lib.cutout, static_argnames=('size', 'prob', 'inside'))


def _images(batch, height=8, width=8, channels=3, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (batch, height, width, channels), np.uint8)


def _matching_offsets(images, crops, padding, pad_mode):
  """(B, 2p+1, 2p+1) bool: which windows of the np.pad-ed image equal each crop."""
  _, height, width, _ = images.shape
  padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)),
                  mode=NP_PAD_MODE[pad_mode])
  windows = np.lib.stride_tricks.sliding_window_view(padded, (height, width), axis=(1, 2))
  # windows: (B, 2p+1, 2p+1, C, H, W)
  return np.all(windows == np.moveaxis(crops, -1, 1)[:, None, None], axis=(3, 4, 5))


@pytest.mark.parametrize('pad_mode', ['zero', 'reflect', 'symmetric'])
def test_random_crop_is_a_uniform_window_of_the_padded_image(pad_mode):
  padding, batch = 2, 4096
  images = _images(batch)
  crops = np.asarray(random_crop(jax.random.key(1), jnp.asarray(images), padding=padding,
                                 pad_mode=pad_mode))
  matches = _matching_offsets(images, crops, padding, pad_mode)
  # Random pixels make every window distinct, so each crop names exactly one offset.
  np.testing.assert_array_equal(matches.sum(axis=(1, 2)), 1)
  counts = matches.sum(axis=0).ravel()
  expected = batch / counts.size
  assert counts.min() > 0, 'every offset in {0..2p}^2 must be reachable'
  assert np.abs(counts - expected).max() < 5 * np.sqrt(expected), counts


@pytest.mark.parametrize('pad_mode,padding', [('zero', 8), ('reflect', 7), ('symmetric', 8)])
def test_random_crop_largest_padding_matches_np_pad(pad_mode, padding):
  images = _images(512)
  crops = random_crop(jax.random.key(2), jnp.asarray(images), padding=padding, pad_mode=pad_mode)
  matches = _matching_offsets(images, np.asarray(crops), padding, pad_mode)
  assert matches.any(axis=(1, 2)).all()


def test_random_crop_zero_padding_is_identity_and_keeps_dtype():
  images = jnp.asarray(_images(4))
  out = augment_lib.random_crop(jax.random.key(0), images, 0, 'zero')
  assert out.dtype == jnp.uint8
  np.testing.assert_array_equal(out, images)


def test_random_flip_mirrors_half_of_the_samples():
  batch = 4096
  images = _images(batch)
  out = np.asarray(random_flip(jax.random.key(3), jnp.asarray(images)))
  flipped = np.all(out == images[:, :, ::-1], axis=(1, 2, 3))
  kept = np.all(out == images, axis=(1, 2, 3))
  np.testing.assert_array_equal(flipped ^ kept, True)  # exactly one of the two, per sample
  assert abs(flipped.mean() - 0.5) < 4 * np.sqrt(0.25 / batch)


def test_alternating_flip_inverts_a_fixed_random_half_on_odd_epochs():
  """airbench: epoch 0 mirrors a random half; image i is mirrored in epoch e iff its epoch-0 coin
  XOR e is odd. The coin is per image index, whatever batch or position the image is in."""
  n = 2048
  images = _images(n)
  key = jax.random.key(5)
  flip = jax.jit(augment_lib.alternating_flip)

  def flipped(index, epoch):
    out = np.asarray(flip(key, jnp.asarray(images[index]), jnp.asarray(index), epoch))
    mirrored = np.all(out == images[index][:, :, ::-1], axis=(1, 2, 3))
    np.testing.assert_array_equal(mirrored | np.all(out == images[index], axis=(1, 2, 3)), True)
    return mirrored

  index = np.arange(n, dtype=np.int32)
  first = flipped(index, 0)
  assert abs(first.mean() - 0.5) < 4 * np.sqrt(0.25 / n)
  for epoch in range(1, 6):
    np.testing.assert_array_equal(flipped(index, epoch), first ^ (epoch % 2 == 1))
  shuffled = np.random.default_rng(0).permutation(n).astype(np.int32)[:100]
  np.testing.assert_array_equal(flipped(shuffled, 3), ~first[shuffled])
  other = np.asarray(jax.vmap(lambda i: jax.random.bernoulli(
      jax.random.fold_in(jax.random.key(6), i)))(index))
  assert (other != first).mean() > 0.4  # another run's key, another half


def test_make_augment_alternating_needs_the_index_and_epoch():
  config = _augment_config(crop_padding=0, flip='alternating')
  images = jnp.asarray(_images(8))
  augment = augment_lib.make_augment(config, MEAN, STD, image_key=jax.random.key(5))
  index = jnp.arange(8, dtype=jnp.int32)
  np.testing.assert_array_equal(
      augment(jax.random.key(0), images, index, 1),
      augment_lib.normalize(augment_lib.alternating_flip(jax.random.key(5), images, index, 1),
                            MEAN, STD))
  with pytest.raises(ValueError, match='index and epoch'):
    augment(jax.random.key(0), images)
  with pytest.raises(ValueError, match='image_key'):
    augment_lib.make_augment(config, MEAN, STD)


def test_translate_is_reflect_pad_and_crop():
  """`augment.translate=r` is pad-and-crop by r with reflect padding: the same draws."""
  images = jnp.asarray(_images(64))
  alias = augment_lib.make_augment(_augment_config(translate=2, crop_padding=4), MEAN, STD)
  crop = augment_lib.make_augment(_augment_config(crop_padding=2, pad_mode='reflect'), MEAN,
                                  STD)
  np.testing.assert_array_equal(alias(jax.random.key(1), images),
                                crop(jax.random.key(1), images))


@pytest.mark.parametrize('dy,dx', [(1, 1), (-1, -1), (2, -1)])
def test_translate_shifts_with_reflect_padding(dy, dx):
  images = _images(3)
  out = np.asarray(augment_lib.translate(jnp.asarray(images), dy, dx))
  p = max(abs(dy), abs(dx))
  padded = np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)), mode='reflect')
  np.testing.assert_array_equal(out, padded[:, p - dy:p - dy + 8, p - dx:p - dx + 8])
  # The interior moved by (dy, dx): pixel (i, j) is the input's (i - dy, j - dx).
  np.testing.assert_array_equal(out[:, 3, 4], images[:, 3 - dy, 4 - dx])


def test_tta_views_are_airbench94s():
  """flip_translate: 1/4 on the image and its mirror, 1/8 on each of the four shifted views
  (airbench94's 0.5 * mirror pair + 0.5 * mean over the two shifted mirror pairs)."""
  images = jnp.asarray(_images(2))
  x = np.asarray(images)
  mirror = lambda a: a[:, :, ::-1]
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='reflect')
  down_right, up_left = padded[:, 0:8, 0:8], padded[:, 2:10, 2:10]
  want = {'none': [(1.0, x)], 'flip': [(0.5, x), (0.5, mirror(x))],
          'flip_translate': [(0.25, x), (0.25, mirror(x)), (0.125, down_right),
                             (0.125, mirror(down_right)), (0.125, up_left),
                             (0.125, mirror(up_left))]}
  for mode, views in want.items():
    got = augment_lib.tta_views(images, mode)
    assert [w for w, _ in got] == [w for w, _ in views]
    for (_, a), (_, b) in zip(got, views):
      np.testing.assert_array_equal(np.asarray(a), b)
  with pytest.raises(UserError, match='eval.tta: unknown mode'):
    augment_lib.tta_views(images, 'crop')


def test_normalize_per_channel():
  images = _images(16)
  mean, std = (120.0, 110.5, 100.25), (60.0, 61.0, 70.0)
  out = augment_lib.normalize(jnp.asarray(images), mean, std)
  assert out.dtype == jnp.float32
  expected = (images.astype(np.float64) - np.array(mean)) / np.array(std)
  np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def _zeroed_boxes(out):
  """Extents [y1, y2) x [x1, x2) of the zeroed region per sample; checks it is a rectangle."""
  zero = np.all(out == 0, axis=-1)
  rows, cols = zero.any(axis=2), zero.any(axis=1)
  np.testing.assert_array_equal(zero, rows[:, :, None] & cols[:, None, :])
  def extent(mask):
    first = np.where(mask.any(1), mask.argmax(1), 0)
    last = np.where(mask.any(1), mask.shape[1] - mask[:, ::-1].argmax(1), 0)
    np.testing.assert_array_equal(mask.sum(1), last - first)  # one contiguous run
    return first, last
  (y1, y2), (x1, x2) = extent(rows), extent(cols)
  return y1, y2, x1, x2


def _clipped_extent(centre, size, length):
  start = centre - size // 2
  return max(start, 0), min(start + size, length)


@pytest.mark.parametrize('size', [4, 5])
def test_cutout_clipped_square_with_uniform_centre(size):
  batch, height = 4096, 12
  images = jnp.ones((batch, height, height, 2), jnp.float32)
  out = np.asarray(cutout(jax.random.key(4), images, size=size, prob=1.0, inside=False))
  y1, y2, x1, x2 = _zeroed_boxes(out)
  # Each centre clips to a distinct extent, so the extent names the centre.
  centre_of = {_clipped_extent(c, size, height): c for c in range(height)}
  assert len(centre_of) == height
  centre_y = np.array([centre_of[e] for e in zip(y1.tolist(), y2.tolist())])
  centre_x = np.array([centre_of[e] for e in zip(x1.tolist(), x2.tolist())])
  expected = batch / height
  for centre in (centre_y, centre_x):
    counts = np.bincount(centre, minlength=height)
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected), counts
  lengths = [b - a for a, b in (_clipped_extent(c, size, height) for c in range(height))]
  expected_area = np.mean(lengths) ** 2  # independent centres: E[len_y] E[len_x]
  area = (y2 - y1) * (x2 - x1)
  assert abs(area.mean() - expected_area) < 0.03 * expected_area
  assert area.max() == size * size


def test_cutout_inside_is_always_a_full_square():
  batch, height, size = 2048, 10, 4
  images = jnp.ones((batch, height, height, 1), jnp.float32)
  out = np.asarray(cutout(jax.random.key(5), images, size=size, prob=1.0, inside=True))
  y1, y2, x1, x2 = _zeroed_boxes(out)
  np.testing.assert_array_equal(y2 - y1, size)
  np.testing.assert_array_equal(x2 - x1, size)
  counts = np.bincount(y1, minlength=height - size + 1)
  assert counts.size == height - size + 1 and counts.min() > 0.8 * batch / counts.size


def test_cutout_probability_and_zero_prob_identity():
  batch = 4096
  images = jnp.ones((batch, 8, 8, 1), jnp.float32)
  out = np.asarray(cutout(jax.random.key(6), images, size=4, prob=0.3, inside=True))
  hit = np.any(out == 0, axis=(1, 2, 3))
  assert abs(hit.mean() - 0.3) < 4 * np.sqrt(0.21 / batch)
  np.testing.assert_array_equal(out[~hit], 1.0)
  out = cutout(jax.random.key(6), images, size=4, prob=0.0)
  np.testing.assert_array_equal(out, images)


def _augment_config(**overrides):
  config = default.get_config().augment
  config.update(overrides)
  return config


MEAN, STD = (125.31, 122.95, 113.87), (62.99, 62.09, 66.70)


def test_make_augment_pads_raw_black_then_normalises_then_cuts_out():
  images = np.full((256, 8, 8, 3), 200, np.uint8)
  config = _augment_config(crop_padding=4, pad_mode='zero', cutout_size=0)
  out = np.asarray(jax.jit(augment_lib.make_augment(config, MEAN, STD))(
      jax.random.key(7), jnp.asarray(images)))
  assert out.dtype == np.float32
  image_value = (200 - np.array(MEAN)) / np.array(STD)
  pad_value = -np.array(MEAN) / np.array(STD)  # black padding, normalised like the image
  is_image = np.isclose(out, image_value, rtol=1e-6).all(-1)
  is_pad = np.isclose(out, pad_value, rtol=1e-6).all(-1)
  np.testing.assert_array_equal(is_image | is_pad, True)
  assert is_pad.any() and is_image.any()

  # Turning Cutout on zeroes squares (0 = the mean) and leaves every other draw unchanged.
  config = _augment_config(crop_padding=4, pad_mode='zero', cutout_size=3)
  cut = np.asarray(jax.jit(augment_lib.make_augment(config, MEAN, STD))(
      jax.random.key(7), jnp.asarray(images)))
  zeroed = np.all(cut == 0, axis=-1)
  assert zeroed.any(axis=(1, 2)).all()
  np.testing.assert_array_equal(cut[~zeroed], out[~zeroed])


def test_make_augment_matches_the_ops_composed_by_hand():
  images = jnp.asarray(_images(64))
  config = _augment_config(crop_padding=2, pad_mode='symmetric', flip='random', cutout_size=3,
                           cutout_prob=0.5, cutout_inside=True)
  key = jax.random.key(8)
  out = jax.jit(augment_lib.make_augment(config, MEAN, STD))(key, images)

  @jax.jit
  def by_hand(key, images):
    key_crop, key_flip, key_cutout = jax.random.split(key, 3)
    images = augment_lib.random_crop(key_crop, images, 2, 'symmetric')
    images = augment_lib.random_flip(key_flip, images)
    images = augment_lib.normalize(images, MEAN, STD)
    return augment_lib.cutout(key_cutout, images, 3, 0.5, inside=True)

  expected = by_hand(key, images)
  np.testing.assert_array_equal(out, expected)
  assert not np.array_equal(out, augment_lib.normalize(images, MEAN, STD))


def test_eval_transform_only_normalises():
  images = jnp.asarray(_images(4))
  np.testing.assert_array_equal(augment_lib.make_eval_transform(MEAN, STD)(images),
                                augment_lib.normalize(images, MEAN, STD))


@pytest.mark.parametrize('overrides,field', [
    (dict(pad_mode='edge'), 'augment.pad_mode'),
    (dict(crop_padding=-1), 'augment.crop_padding'),
    (dict(cutout_size=-16), 'augment.cutout_size'),
    (dict(cutout_prob=1.5), 'augment.cutout_prob'),
    (dict(cutout_prob=-0.1), 'augment.cutout_prob'),
    (dict(flip='sometimes'), 'augment.flip'),
    (dict(translate=-2), 'augment.translate'),
])
def test_make_augment_rejects_bad_config(overrides, field):
  with pytest.raises(UserError, match=f'^{field}: ') as info:
    augment_lib.make_augment(_augment_config(**overrides), MEAN, STD)
  assert '\n' not in str(info.value)


@pytest.mark.parametrize('overrides,shape,field', [
    (dict(crop_padding=9, pad_mode='zero'), (2, 8, 8, 3), 'augment.crop_padding'),
    (dict(crop_padding=8, pad_mode='reflect'), (2, 8, 8, 3), 'augment.crop_padding'),
    (dict(cutout_size=9, cutout_inside=True), (2, 8, 8, 3), 'augment.cutout_size'),
    (dict(), (2, 8, 8, 1), 'augment.mean'),
])
def test_make_augment_rejects_config_that_does_not_fit_the_images(overrides, shape, field):
  augment = augment_lib.make_augment(_augment_config(**overrides), MEAN, STD)
  with pytest.raises(UserError, match=f'^{field}'):
    jax.eval_shape(augment, jax.random.key(0), jax.ShapeDtypeStruct(shape, jnp.uint8))


def test_make_augment_rejects_bad_stats():
  with pytest.raises(UserError, match='^augment.std'):
    augment_lib.make_augment(_augment_config(), MEAN, (1.0, 0.0, 1.0))
  with pytest.raises(UserError, match='^augment.mean'):
    augment_lib.make_eval_transform(MEAN, (1.0, 1.0))


def test_make_augment_reads_a_plain_config_dict():
  config = ml_collections.ConfigDict(dict(crop_padding=0, pad_mode='reflect', flip='none',
                                          cutout_size=0, cutout_prob=1.0, cutout_inside=False))
  images = jnp.asarray(_images(2))
  np.testing.assert_array_equal(
      augment_lib.make_augment(config, MEAN, STD)(jax.random.key(0), images),
      augment_lib.normalize(images, MEAN, STD))


def test_channel_stats_matches_numpy_in_float64():
  images = _images(300, 5, 7, 3, seed=9)
  mean, std = augment_lib.channel_stats(images, chunk_size=7)
  flat = images.reshape(-1, 3).astype(np.float64)
  np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-12)
  np.testing.assert_allclose(std, flat.std(0), rtol=1e-12)
  assert all(isinstance(v, float) for v in mean + std)


def test_channel_stats_never_holds_a_float_copy_of_the_split():
  images = _images(2000, 32, 32, 3)
  tracemalloc.start()
  try:
    augment_lib.channel_stats(images, chunk_size=100)
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert peak < images.size * 8 / 4, peak
