"""The on-disk cache of decoded splits (`jaxcls.data.cache`)."""

import os

import numpy as np
from PIL import Image
import pytest

from configs import default
from jaxcls import data
from jaxcls.data import cache
from jaxcls.data import folder


def write_tree(root, n=3):
  for split in ('train', 'test'):
    for label in ('a', 'b'):
      os.makedirs(root / split / label)
      for i in range(n):
        image = np.full((4, 4, 3), 10 * i + (label == 'b'), np.uint8)
        Image.fromarray(image).save(root / split / label / f'{i}.png')


def dataset_config(tmp_path, **overrides):
  config = default.get_config().dataset
  config.source = 'folder'
  config.name = 'toy'
  config.path = str(tmp_path / 'tree')
  config.cache_dir = str(tmp_path / 'cache')
  config.update(overrides)
  return config


@pytest.fixture
def count_decodes(monkeypatch):
  calls = []
  decode = folder._decode_image

  def counting(data_bytes, member):
    calls.append(member)
    return decode(data_bytes, member)

  monkeypatch.setattr(folder, '_decode_image', counting)
  return calls


def fail_decoding(monkeypatch):
  def fail(*args):
    raise AssertionError(f'decoded {args[-1]} although it is cached')
  monkeypatch.setattr(folder, '_decode_image', fail)


def assert_same(a, b):
  for x, y in zip(a[:2], b[:2]):
    np.testing.assert_array_equal(x.images, y.images)
    np.testing.assert_array_equal(x.labels, y.labels)
  assert a[2] == b[2]


def test_second_load_does_not_decode(tmp_path, monkeypatch, count_decodes):
  write_tree(tmp_path / 'tree')
  config = dataset_config(tmp_path, train_split='train[:2]+test', eval_split='test[1:]')
  first = data.load_dataset(config)
  assert len(count_decodes) == 12  # each base split decoded once, though both fields use 'test'
  cached = sorted(os.listdir(tmp_path / 'cache'))
  assert len(cached) == 2 and all(name.endswith('.npz') for name in cached)
  fail_decoding(monkeypatch)
  assert_same(first, data.load_dataset(config))
  config.train_split = 'train'  # another slice of the same base splits is still cached
  assert data.load_dataset(config)[2].train_size == 6


def test_changed_file_is_decoded_again(tmp_path, count_decodes):
  write_tree(tmp_path / 'tree')
  config = dataset_config(tmp_path)
  data.load_dataset(config)
  path = tmp_path / 'tree/test/a/0.png'
  Image.fromarray(np.full((4, 4, 3), 200, np.uint8)).save(path)
  os.utime(path, ns=(1, 1))  # another mtime even on a coarse clock
  count_decodes.clear()
  _, eval_, _ = data.load_dataset(config)
  assert len(count_decodes) == 6  # only the test split
  assert eval_.images[0, 0, 0, 0] == 200


def test_corrupt_cache_file_is_rebuilt(tmp_path, count_decodes):
  write_tree(tmp_path / 'tree')
  config = dataset_config(tmp_path)
  first = data.load_dataset(config)
  for name in os.listdir(tmp_path / 'cache'):
    path = tmp_path / 'cache' / name
    path.write_bytes(path.read_bytes()[:100])  # as if the disk filled up mid-write
  count_decodes.clear()
  assert_same(first, data.load_dataset(config))
  assert len(count_decodes) == 12
  count_decodes.clear()
  data.load_dataset(config)  # rewritten whole
  assert not count_decodes


def test_writes_are_atomic(tmp_path, monkeypatch):
  write_tree(tmp_path / 'tree')
  config = dataset_config(tmp_path)

  def killed(*args, **kwargs):
    raise KeyboardInterrupt  # the process dies while writing the cache file
  monkeypatch.setattr(np, 'savez', killed)
  with pytest.raises(KeyboardInterrupt):
    data.load_dataset(config)
  assert os.listdir(tmp_path / 'cache') == []  # no half-written file, no temporary file


def test_cache_key_covers_source_split_and_files(tmp_path):
  base = dict(source='folder', name='toy', path='/x', files=(1, 2), split='train')
  paths = {cache.path_for('/c', base)}
  for field, value in [('source', 'idx'), ('name', 'toy2'), ('path', '/y'), ('files', (1, 3)),
                       ('split', 'test')]:
    paths.add(cache.path_for('/c', {**base, field: value}))
  assert len(paths) == 6


def test_cache_dir_from_environment(tmp_path, monkeypatch):
  write_tree(tmp_path / 'tree')
  monkeypatch.setenv('JAXCLS_CACHE_DIR', str(tmp_path / 'env_cache'))
  data.load_dataset(dataset_config(tmp_path, cache_dir=None))
  assert len(os.listdir(tmp_path / 'env_cache')) == 2
  assert not (tmp_path / 'cache').exists()


def test_cache_dir_from_environment_expands_the_tilde(tmp_path, monkeypatch):
  monkeypatch.setenv('HOME', str(tmp_path))
  monkeypatch.setenv('JAXCLS_CACHE_DIR', '~/env_cache')
  assert cache.default_dir() == str(tmp_path / 'env_cache')
  monkeypatch.delenv('JAXCLS_CACHE_DIR')
  assert cache.default_dir() == str(tmp_path / '.cache' / 'jaxcls')


def test_unwritable_cache_dir_still_loads(tmp_path):
  write_tree(tmp_path / 'tree')
  (tmp_path / 'blocked').write_text('a file where the cache directory should be')
  train, _, _ = data.load_dataset(dataset_config(tmp_path, cache_dir=str(tmp_path / 'blocked')))
  assert train.images.shape == (6, 4, 4, 3)


def test_data_that_disagrees_with_its_size_is_not_cached(tmp_path):
  key = dict(source='tfds', name='toy', split='train')
  arrays = data.LabeledImages(np.zeros((2, 4, 4, 3), np.uint8), np.zeros(2, np.int32))
  got = cache.load_or_build(str(tmp_path), key, expected_size=5, build=lambda: arrays)
  assert got is arrays
  assert os.listdir(tmp_path) == []
  cache.load_or_build(str(tmp_path), key, expected_size=2, build=lambda: arrays)
  assert len(os.listdir(tmp_path)) == 1
  # A cache file read for another expected size is stale, not trusted.
  one = data.LabeledImages(arrays.images[:1], arrays.labels[:1])
  rebuilt = cache.load_or_build(str(tmp_path), key, expected_size=3, build=lambda: one)
  assert len(rebuilt.labels) == 1
