"""The real offline copies in `<repo>/../shared/data` (or `$JAXCLS_SHARED_DATA`), skipped if absent.

Kept cheap: CIFAR-10 decodes only its 10,000-image test split; Fashion-MNIST loads in full.
"""

import io
import os
import zipfile

import numpy as np
from PIL import Image
import pytest

from configs import default
from jaxcls import data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get('JAXCLS_SHARED_DATA') or os.path.join(REPO, '..', 'shared', 'data')
CIFAR_ZIP = os.path.join(SHARED_DATA, 'cifar10-jpeg.zip')
FASHION_DIR = os.path.join(SHARED_DATA, 'fashion_mnist')
CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
                   'ship', 'truck')


def dataset_config(tmp_path, **overrides):
  config = default.get_config().dataset
  config.cache_dir = str(tmp_path / 'cache')
  config.update(overrides)
  return config


@pytest.mark.skipif(not os.path.isfile(CIFAR_ZIP), reason=f'no CIFAR-10 zip at {CIFAR_ZIP}')
def test_cifar10_jpeg_zip(tmp_path):
  source = data.open_source(dataset_config(tmp_path, source='folder', path=CIFAR_ZIP))
  assert source.split_sizes == {'test': 10000, 'train': 50000}
  assert source.class_names == CIFAR10_CLASSES

  train, eval_, info = data.load_dataset(dataset_config(
      tmp_path, source='folder', name='cifar10', path=CIFAR_ZIP, train_split='test[:1000]',
      eval_split='test[-10%:]'))
  assert info.class_names == CIFAR10_CLASSES and info.num_classes == 10
  assert info.image_shape == (32, 32, 3)
  assert train.images.shape == (1000, 32, 32, 3) and eval_.images.shape == (1000, 32, 32, 3)
  # Interleaved classes: any slice of 1,000 holds 100 of each.
  np.testing.assert_array_equal(np.bincount(train.labels), [100] * 10)
  np.testing.assert_array_equal(np.bincount(eval_.labels), [100] * 10)
  assert 100 < train.images.mean() < 140  # CIFAR-10's mean pixel is about 121
  # The 0th cat image (class id 3) sits at position 3, decoded as Pillow decodes it.
  with zipfile.ZipFile(CIFAR_ZIP) as zf:
    cat = np.asarray(Image.open(io.BytesIO(zf.read('cifar10-jpeg/test/cat/0000.jpg'))))
  np.testing.assert_array_equal(train.images[3], cat)
  assert train.labels[3] == 3


@pytest.mark.skipif(not os.path.isdir(FASHION_DIR), reason=f'no Fashion-MNIST at {FASHION_DIR}')
def test_fashion_mnist_idx_seed_b_split(tmp_path):
  config = dataset_config(tmp_path, source='idx', name='fashion_mnist', path=FASHION_DIR,
                          train_split='train[:30000]', eval_split='train[30000:]+test')
  train, eval_, info = data.load_dataset(config)
  assert (info.train_size, info.eval_size) == (30000, 40000)
  assert info.image_shape == (28, 28, 1) and info.num_classes == 10
  assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
  np.testing.assert_array_equal(np.bincount(eval_.labels[-10000:]), [1000] * 10)  # the test set
  train2, eval2, info2 = data.load_dataset(config)  # from the cache
  np.testing.assert_array_equal(train2.images, train.images)
  np.testing.assert_array_equal(eval2.labels, eval_.labels)
  assert info2 == info
