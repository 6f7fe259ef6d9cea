"""TFDS datasets: mocked CIFAR-10 / Fashion-MNIST, and a tiny dataset prepared for real.

Under `tfds.testing.mock_data` TFDS knows no split sizes and returns `num_examples` random
examples for any split string; the tiny `JaxclsToyImages` builder is prepared on disk by the test
(no network), so the real path (split sizes, errors, cache) runs too.
"""

import os
import socket
import time

import numpy as np
import pytest

from configs import default
from jaxcls import data
from jaxcls.data import tfds_source
from jaxcls.errors import UserError

tfds = pytest.importorskip('tensorflow_datasets')


def toy_image(i):
  return np.random.RandomState(i).randint(0, 256, (4, 5, 3), dtype=np.uint8)


class JaxclsToyImages(tfds.core.GeneratorBasedBuilder):
  """8 train and 3 test images of 4x5x3, labels i % 3."""

  VERSION = tfds.core.Version('1.0.0')
  # Where TFDS looks for README/CITATIONS; inferring it needs a package, and tests/ is not one.
  pkg_dir_path = tfds.core.Path(os.path.dirname(os.path.abspath(__file__)))

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(4, 5, 3)),
            'label': tfds.features.ClassLabel(names=['x', 'y', 'z']),
        }),
        supervised_keys=('image', 'label'))

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    return {'train': self._generate_examples(range(8)),
            'test': self._generate_examples(range(100, 103))}

  def _generate_examples(self, indices):
    for i in indices:
      yield i, {'image': toy_image(i), 'label': i % 3}


def dataset_config(tmp_path, **overrides):
  config = default.get_config().dataset
  config.source = 'tfds'
  config.data_dir = str(tmp_path / 'tfds')
  config.cache_dir = str(tmp_path / 'cache')
  config.update(overrides)
  return config


@pytest.mark.parametrize('name, shape, num_classes', [
    ('cifar10', (32, 32, 3), 10),
    ('fashion_mnist', (28, 28, 1), 10),
    ('cifar100', (32, 32, 3), 100),
])
def test_mocked_tfds(tmp_path, name, shape, num_classes):
  config = dataset_config(tmp_path, name=name, train_split='train[:90%]',
                          eval_split='train[90%:]+test')
  with tfds.testing.mock_data(num_examples=7):
    train, eval_, info = data.load_dataset(config)
  assert train.images.shape == (7, *shape) and eval_.images.shape == (7, *shape)
  assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
  assert ((train.labels >= 0) & (train.labels < num_classes)).all()
  assert (info.name, info.num_classes, info.image_shape) == (name, num_classes, shape)
  # Mock data must never reach the cache, where it would pass for the real dataset.
  assert not os.path.exists(tmp_path / 'cache') or not os.listdir(tmp_path / 'cache')


def test_mocked_tfds_bad_split_syntax(tmp_path):
  with tfds.testing.mock_data(num_examples=2):
    with pytest.raises(UserError, match=r"^dataset.eval_split: cannot parse split "
                                        r"'test\[::\]'"):
      data.load_dataset(dataset_config(tmp_path, name='cifar10', eval_split='test[::]'))


def test_unknown_tfds_name(tmp_path):
  with pytest.raises(UserError, match=r"^dataset.name: unknown TFDS dataset 'cifar11'; .*"
                                      r"dataset.source='folder'"):
    data.load_dataset(dataset_config(tmp_path, name='cifar11'))


def test_tfds_dataset_without_images(tmp_path):
  with pytest.raises(UserError, match=r"^dataset.name: TFDS dataset 'glue/cola' has no image "
                                      r'and class-label features \(it has: .*sentence'):
    data.load_dataset(dataset_config(tmp_path, name='glue/cola'))


def test_not_prepared_and_the_download_fails(tmp_path, monkeypatch):
  def offline(self, *args, **kwargs):
    raise ConnectionError('Name or service not known')
  monkeypatch.setattr(tfds_source, 'unreachable_host', lambda urls: None)  # the probe passed
  monkeypatch.setattr(tfds.core.DatasetBuilder, 'download_and_prepare', offline)
  with pytest.raises(UserError) as e:
    data.load_dataset(dataset_config(tmp_path, name='fashion_mnist'))
  message = str(e.value)
  assert message.startswith(f"dataset.data_dir: TFDS dataset 'fashion_mnist' is not in data_dir "
                            f"{tmp_path / 'tfds'} and could not be downloaded (ConnectionError")
  assert "dataset.source='folder'" in message and "'idx'" in message and '\n' not in message


def test_not_prepared_and_offline_fails_in_seconds_naming_the_way_out(tmp_path, monkeypatch):
  """No network: the download hosts do not answer, so no minutes of TFDS retries."""
  def no_network(address, timeout=None):
    raise socket.gaierror(-2, 'Name or service not known')

  def must_not_download(self, *args, **kwargs):
    raise AssertionError('TFDS download attempted although the host is unreachable')

  for variable in tfds_source._PROXY_VARIABLES:
    monkeypatch.delenv(variable, raising=False)
  monkeypatch.setattr(socket, 'create_connection', no_network)
  monkeypatch.setattr(tfds.core.DatasetBuilder, 'download_and_prepare', must_not_download)
  start = time.perf_counter()
  with pytest.raises(UserError) as e:
    data.load_dataset(dataset_config(tmp_path, name='cifar10'))
  assert time.perf_counter() - start < 10
  assert str(e.value) == (
      f"dataset.data_dir: TFDS dataset 'cifar10' is not prepared in data_dir {tmp_path / 'tfds'} "
      'and its download host www.cs.toronto.edu (Name or service not known) is unreachable; for '
      'data on disk use --config.dataset.source=folder --config.dataset.path=cifar10-jpeg.zip (an '
      'image-folder tree split/class/image.png, directory or zip) or '
      '--config.dataset.source=idx --config.dataset.path=fashion_mnist/ (MNIST-style idx files), '
      "as in the README's Data section, or prepare it where there is network (`tfds build "
      'cifar10 --data_dir=...`) and set dataset.data_dir')


def test_hosts_are_not_probed_behind_a_proxy(monkeypatch):
  monkeypatch.setenv('https_proxy', 'http://proxy:3128')
  monkeypatch.setattr(socket, 'create_connection', lambda *a, **k: 1 / 0)
  assert tfds_source.unreachable_host(['https://www.cs.toronto.edu/x.tar.gz']) is None


def test_the_probe_tries_each_host_once_on_its_port(monkeypatch):
  for variable in tfds_source._PROXY_VARIABLES:
    monkeypatch.delenv(variable, raising=False)
  tried = []

  class Connection:
    def close(self):
      pass

  monkeypatch.setattr(socket, 'create_connection',
                      lambda address, timeout: tried.append((address, timeout)) or Connection())
  assert tfds_source.unreachable_host(['https://a.org/1', 'https://a.org/2', 'http://b.org:81/3',
                                       'http://c.org/4']) is None
  assert tried == [(('a.org', 443), 3.0), (('b.org', 81), 3.0), (('c.org', 80), 3.0)]


def test_prepared_tfds_dataset_splits_and_cache(tmp_path, monkeypatch):
  config = dataset_config(tmp_path, name='jaxcls_toy_images', train_split='train[:75%]',
                          eval_split='train[75%:]+test')
  train, eval_, info = data.load_dataset(config)  # prepares the data (locally), then reads it
  # TFDS shuffles examples when it prepares them: compare with what TFDS reads for each string.
  for split, arrays in ((config.train_split, train), (config.eval_split, eval_)):
    ds = tfds.load('jaxcls_toy_images', split=split, data_dir=config.data_dir,
                   as_supervised=True, batch_size=100)
    (images, labels), = tfds.as_numpy(ds)
    np.testing.assert_array_equal(arrays.images, images)
    np.testing.assert_array_equal(arrays.labels, labels)
  everything = {toy_image(i).tobytes(): i % 3 for i in (*range(8), *range(100, 103))}
  assert {x.tobytes(): y for x, y in zip(np.concatenate([train.images, eval_.images]),
                                         np.concatenate([train.labels, eval_.labels]))
         } == everything
  assert info == data.DatasetInfo(name='jaxcls_toy_images', num_classes=3, image_shape=(4, 5, 3),
                                  class_names=('x', 'y', 'z'), train_size=6, eval_size=5)
  assert len(os.listdir(tmp_path / 'cache')) == 2

  def fail(*args, **kwargs):
    raise AssertionError('read TFDS although the splits are cached')
  monkeypatch.setattr(tfds.core.DatasetBuilder, 'as_dataset', fail)
  train2, eval2, info2 = data.load_dataset(config)
  np.testing.assert_array_equal(train2.images, train.images)
  np.testing.assert_array_equal(eval2.labels, eval_.labels)
  assert info2 == info

  config.eval_split = 'validation'
  with pytest.raises(UserError, match=r"^dataset.eval_split: bad split 'validation' .*available "
                                      r'splits: (train \(8\), test \(3\)|test \(3\), train \(8\))'):
    data.load_dataset(config)
  monkeypatch.undo()

  # Mocked on top of the prepared data, TFDS knows the real split sizes but returns 2 random
  # examples; that disagreement keeps them out of the cache.
  config.eval_split = 'test'
  config.cache_dir = str(tmp_path / 'cache2')
  with tfds.testing.mock_data(num_examples=2):
    assert data.load_dataset(config)[2].train_size == 2
  assert not os.path.exists(tmp_path / 'cache2') or not os.listdir(tmp_path / 'cache2')
