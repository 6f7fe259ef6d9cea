"""scikit-learn's digits, the quickstart's offline default (`jaxcls.data.embedded`)."""

import os

import numpy as np
import pytest

from configs import default
from jaxcls import data
from jaxcls.errors import UserError
from tests.conftest import run_python

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dataset_config(tmp_path, **overrides):
  config = default.get_config().dataset
  config.source = 'embedded'
  config.name = 'digits'
  config.cache_dir = str(tmp_path / 'cache')
  config.update(overrides)
  return config


def test_digits_sizes_shapes_and_fixed_split(tmp_path):
  from sklearn import datasets
  train, eval_, info = data.load_dataset(dataset_config(tmp_path))
  assert info == data.DatasetInfo(name='digits', num_classes=10, image_shape=(32, 32, 1),
                                  class_names=tuple('0123456789'), train_size=1437,
                                  eval_size=360)
  assert train.images.shape == (1437, 32, 32, 1) and eval_.images.shape == (360, 32, 32, 1)
  assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
  assert train.images.min() == 0 and train.images.max() == 255  # 0..16 rescaled to 0..255

  digits = datasets.load_digits()
  permutation = np.random.RandomState(0).permutation(1797)
  np.testing.assert_array_equal(train.labels, digits.target[permutation[:1437]])
  np.testing.assert_array_equal(eval_.labels, digits.target[permutation[1437:]])
  # Nearest-neighbour upsampling: every 4x4 block is one source pixel, rescaled.
  source = digits.images[permutation[1437]]
  np.testing.assert_array_equal(eval_.images[0, ::4, ::4, 0], np.round(source * 255 / 16))
  blocks = eval_.images[0, :, :, 0].reshape(8, 4, 8, 4)
  assert (blocks == blocks[:, :1, :, :1]).all()


def test_digits_deterministic_and_split_syntax(tmp_path):
  train, eval_, _ = data.load_dataset(dataset_config(tmp_path))
  train2, eval2, info = data.load_dataset(
      dataset_config(tmp_path, cache_dir=str(tmp_path / 'other'), train_split='train[:10%]',
                     eval_split='train[-100:]+test'))
  np.testing.assert_array_equal(train2.images, train.images[:144])
  np.testing.assert_array_equal(eval2.labels, np.concatenate([train.labels[-100:], eval_.labels]))
  assert (info.train_size, info.eval_size) == (144, 460)


def test_unknown_embedded_name(tmp_path):
  with pytest.raises(UserError, match=r"^dataset.name: no embedded dataset 'iris'; .*digits"):
    data.load_dataset(dataset_config(tmp_path, name='iris'))


def test_unknown_source(tmp_path):
  with pytest.raises(UserError, match=r"^dataset.source: unknown source 'hdf5'; choose one of: "
                                      r'tfds, folder, idx, embedded'):
    data.load_dataset(dataset_config(tmp_path, source='hdf5'))


def test_digits_start_up_does_not_import_tensorflow(tmp_path):
  # The quickstart path must stay lean: no TensorFlow (several seconds), and on a warm cache not
  # even scikit-learn.
  script = (
      'import sys\n'
      'from configs import default\n'
      'from jaxcls import data\n'
      'config = default.get_config().dataset\n'
      "config.update(source='embedded', name='digits', cache_dir=sys.argv[1])\n"
      'data.load_dataset(config)\n'
      "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'sklearn', 'jax'}))\n")
  run = lambda: run_python('-c', script, str(tmp_path / 'cache')).stdout.split('\n')[-2]
  assert run() == "['sklearn']"
  assert run() == '[]'
