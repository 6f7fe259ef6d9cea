"""MNIST-style idx files, raw and gzipped (`jaxcls.data.idx` via `load_dataset`)."""

import gzip

import numpy as np
import pytest

from configs import default
from jaxcls import data
from jaxcls.errors import UserError


def idx_bytes(array):
  header = (0x0800 | array.ndim).to_bytes(4, 'big')
  header += b''.join(int(n).to_bytes(4, 'big') for n in array.shape)
  return header + array.astype(np.uint8).tobytes()


def write_idx(directory, prefix, images, labels, gz):
  for kind, array in (('images-idx3', images), ('labels-idx1', labels)):
    path = directory / f'{prefix}-{kind}-ubyte{".gz" if gz else ""}'
    path.write_bytes(gzip.compress(idx_bytes(array)) if gz else idx_bytes(array))


def make_split(n, seed, num_classes=10):
  rng = np.random.RandomState(seed)
  return rng.randint(0, 256, (n, 3, 2), dtype=np.uint8), rng.randint(0, num_classes, n)


def dataset_config(tmp_path, **overrides):
  config = default.get_config().dataset
  config.source = 'idx'
  config.name = 'toy_mnist'
  config.path = str(tmp_path / 'idx')
  config.cache_dir = str(tmp_path / 'cache')
  config.update(overrides)
  return config


@pytest.fixture
def idx_dir(tmp_path):
  (tmp_path / 'idx').mkdir()
  return tmp_path / 'idx'


@pytest.mark.parametrize('gz', [False, True])
def test_idx_load(tmp_path, idx_dir, gz):
  train_images, train_labels = make_split(12, 0)
  test_images, test_labels = make_split(5, 1)
  train_labels[3] = 9  # the class count is inferred from the largest label
  write_idx(idx_dir, 'train', train_images, train_labels, gz)
  write_idx(idx_dir, 't10k', test_images, test_labels, gz)

  train, eval_, info = data.load_dataset(dataset_config(tmp_path))
  np.testing.assert_array_equal(train.images, train_images[..., None])
  np.testing.assert_array_equal(train.labels, train_labels)
  np.testing.assert_array_equal(eval_.images, test_images[..., None])
  assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
  assert info == data.DatasetInfo(name='toy_mnist', num_classes=10, image_shape=(3, 2, 1),
                                  class_names=None, train_size=12, eval_size=5)


def test_seed_b_style_split(tmp_path, idx_dir):
  train_images, train_labels = make_split(10, 0)
  test_images, test_labels = make_split(4, 1)
  write_idx(idx_dir, 'train', train_images, train_labels, gz=True)
  write_idx(idx_dir, 't10k', test_images, test_labels, gz=False)  # mixed is fine
  train, eval_, info = data.load_dataset(
      dataset_config(tmp_path, train_split='train[:6]', eval_split='train[6:]+test'))
  np.testing.assert_array_equal(train.labels, train_labels[:6])
  np.testing.assert_array_equal(eval_.images[..., 0],
                                np.concatenate([train_images[6:], test_images]))
  np.testing.assert_array_equal(eval_.labels, np.concatenate([train_labels[6:], test_labels]))
  assert (info.train_size, info.eval_size) == (6, 8)


@pytest.mark.parametrize('gz', [False, True])
def test_truncated_images_name_the_file(tmp_path, idx_dir, gz):
  images, labels = make_split(4, 0)
  write_idx(idx_dir, 'train', images, labels, gz=False)
  name = 'train-images-idx3-ubyte'
  content = (idx_dir / name).read_bytes()[:-5]
  (idx_dir / name).unlink()
  if gz:  # a gzip stream cut short, not an idx file cut short
    content = gzip.compress(idx_bytes(images))[:-20]
    name += '.gz'
  (idx_dir / name).write_bytes(content)
  with pytest.raises(UserError, match=rf"^dataset.path: .*'[^']*{name}'.*download it again"):
    data.load_dataset(dataset_config(tmp_path, eval_split='train'))


def test_corrupt_gzip_body_names_the_file(tmp_path, idx_dir):
  """A flipped byte inside the deflate stream: zlib.error, not a traceback."""
  write_idx(idx_dir, 'train', *make_split(40, 0), gz=True)
  write_idx(idx_dir, 't10k', *make_split(5, 1), gz=True)
  path = idx_dir / 'train-images-idx3-ubyte.gz'
  data_ = bytearray(path.read_bytes())
  data_[20:40] = bytes(b ^ 0xFF for b in data_[20:40])
  path.write_bytes(bytes(data_))
  with pytest.raises(UserError, match=r"^dataset.path: cannot read idx file "
                                      r"'.*train-images-idx3-ubyte.gz' \(.*\); download it again$"):
    data.load_dataset(dataset_config(tmp_path))


def test_bad_magic_names_the_file(tmp_path, idx_dir):
  images, labels = make_split(4, 0)
  write_idx(idx_dir, 'train', images, labels, gz=False)
  (idx_dir / 'train-labels-idx1-ubyte').write_bytes(idx_bytes(images))  # idx3 as labels
  with pytest.raises(UserError, match=r"^dataset.path: '.*train-labels-idx1-ubyte' is not an "
                                      r'idx file of 1-D unsigned bytes'):
    data.load_dataset(dataset_config(tmp_path, eval_split='train'))


def test_count_mismatch_names_both_files(tmp_path, idx_dir):
  images, labels = make_split(4, 0)
  write_idx(idx_dir, 'train', images, labels[:3], gz=False)
  with pytest.raises(UserError, match=r"^dataset.path: '.*train-images-idx3-ubyte' holds 4 "
                                      r"images but '.*train-labels-idx1-ubyte' holds 3 labels"):
    data.load_dataset(dataset_config(tmp_path, eval_split='train'))


def test_missing_files(tmp_path, idx_dir):
  with pytest.raises(UserError, match=r'^dataset.path: no idx files in'):
    data.load_dataset(dataset_config(tmp_path))
  images, labels = make_split(4, 0)
  write_idx(idx_dir, 'train', images, labels, gz=False)
  (idx_dir / 'train-labels-idx1-ubyte').unlink()
  with pytest.raises(UserError, match=r'but no train-labels-idx1-ubyte\[.gz\]'):
    data.load_dataset(dataset_config(tmp_path))


def test_only_train_files_then_test_split_is_unknown(tmp_path, idx_dir):
  images, labels = make_split(4, 0)
  write_idx(idx_dir, 'train', images, labels, gz=False)
  with pytest.raises(UserError, match=r"^dataset.eval_split: bad split 'test' .*available "
                                      r'splits: train \(4\)'):
    data.load_dataset(dataset_config(tmp_path))


def test_missing_path(tmp_path):
  with pytest.raises(UserError, match=r"^dataset.path: '.*nowhere' does not exist"):
    data.load_dataset(dataset_config(tmp_path, path=str(tmp_path / 'nowhere')))


def test_labels_outside_num_classes(tmp_path, idx_dir):
  images, labels = make_split(6, 0, num_classes=3)
  labels[4] = 7
  write_idx(idx_dir, 'train', images, labels, gz=False)
  write_idx(idx_dir, 't10k', images, labels, gz=False)
  with pytest.raises(UserError, match=r"^dataset.num_classes: dataset.train_split 'train\[:5\]' "
                                      r'has label 7, outside \[0, 5\) .*at least 8'):
    data.load_dataset(dataset_config(tmp_path, num_classes=5, train_split='train[:5]'))
  # Labels inside the range pass, and the set value wins over the inferred 8.
  _, _, info = data.load_dataset(
      dataset_config(tmp_path, num_classes=5, train_split='train[:4]', eval_split='test[:4]'))
  assert info.num_classes == 5
