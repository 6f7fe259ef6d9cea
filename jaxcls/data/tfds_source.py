"""TFDS image-classification datasets (`cifar10`, `cifar100`, `fashion_mnist`, ...).

The split string goes to TFDS unchanged (but for `splits.tfds_spec`'s correction); it is checked
first against the builder's split sizes so that a typo names the config field. A dataset that is
not prepared yet is downloaded, but only after its download hosts (from the checksums TFDS ships)
answered within seconds: offline, TFDS would retry for minutes before failing. Examples are
read in batches through `tfds.as_numpy`, never with `batch_size=-1`: under
`tfds.testing.mock_data` that aborts the process (TF 2.21).
TensorFlow is imported only here, and GPUs are hidden from it before it touches a device, so it
never takes accelerator memory that JAX needs.
"""

import os
import socket
from typing import Any
import urllib.parse

from absl import logging
import numpy as np

from jaxcls.data.base import LabeledImages, Source
from jaxcls.errors import UserError

_BATCH = 1024
_OFFLINE_HINT = ("for data on disk set dataset.source='folder' (an image-folder directory or "
                 "zip) or 'idx' (MNIST-style idx files) with dataset.path, or "
                 "dataset.source='embedded' with dataset.name='digits'")
_OFFLINE_EXAMPLE = ('--config.dataset.source=folder --config.dataset.path=cifar10-jpeg.zip (an '
                    'image-folder tree split/class/image.png, directory or zip) or '
                    '--config.dataset.source=idx --config.dataset.path=fashion_mnist/ (MNIST-style '
                    'idx files), as in the README\'s Data section')
_PROBE_TIMEOUT_S = 3.0
_PROXY_VARIABLES = ('https_proxy', 'http_proxy', 'all_proxy', 'HTTPS_PROXY', 'HTTP_PROXY',
                    'ALL_PROXY')


def import_tfds():
  """`tensorflow_datasets`, after hiding every GPU from TensorFlow."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    tf.config.set_visible_devices([], 'GPU')
  except RuntimeError:  # raised once TensorFlow has initialised its devices
    logging.warning('TensorFlow devices were initialised before jaxcls could hide the GPUs.')
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds


def unreachable_host(urls: list[str], timeout: float = _PROBE_TIMEOUT_S) -> str | None:
  """The first `host (reason)` among `urls` that takes no TCP connection within `timeout`
  seconds, or None. Behind a proxy (the *_proxy variables) hosts are not probed: only the proxy
  knows."""
  if any(os.environ.get(v) for v in _PROXY_VARIABLES):
    return None
  seen = set()
  for url in urls:
    parts = urllib.parse.urlsplit(url)
    address = (parts.hostname, parts.port or (443 if parts.scheme == 'https' else 80))
    if not parts.hostname or address in seen:
      continue
    seen.add(address)
    try:
      socket.create_connection(address, timeout=timeout).close()
    except OSError as e:
      return f'{parts.hostname} ({e.strerror or e})'
  return None


def _size_and_mtime(path) -> tuple[int, int]:
  stat = path.stat()
  return stat.length, stat.mtime


class TfdsSource(Source):
  """A TFDS builder with an image feature and a class-label feature."""

  reads_split_strings = True

  def __init__(self, name: str, data_dir: str | None):
    tfds = import_tfds()
    self._tfds = tfds
    try:
      builder = tfds.builder(name, data_dir=data_dir)
    except ValueError as e:  # DatasetNotFoundError is a ValueError, as are malformed names
      raise UserError(f"dataset.name: unknown TFDS dataset {name!r}; use a TFDS name such as "
                      f"cifar10, cifar100, fashion_mnist, or {_OFFLINE_HINT}") from e
    features = builder.info.features
    keys = builder.info.supervised_keys
    if isinstance(keys, tuple) and len(keys) == 2 and all(isinstance(k, str) for k in keys):
      self._image_key, self._label_key = keys
    else:
      self._image_key, self._label_key = 'image', 'label'
    image = features[self._image_key] if self._image_key in features else None
    label = features[self._label_key] if self._label_key in features else None
    if (not isinstance(image, tfds.features.Image)
        or not isinstance(label, tfds.features.ClassLabel)):
      raise UserError(f'dataset.name: TFDS dataset {name!r} has no image and class-label '
                      f'features (it has: {", ".join(features.keys())}); choose an image '
                      'classification dataset')
    if None in image.shape or np.dtype(image.np_dtype) != np.uint8:
      raise UserError(f'dataset.name: TFDS dataset {name!r} has images of shape {image.shape} '
                      f'and dtype {np.dtype(image.np_dtype)}; only fixed-size uint8 images work')
    if not builder.is_prepared():
      searched = os.path.dirname(os.path.dirname(builder.data_dir))  # above name/version
      # The URLs come from the checksum files TFDS ships, so listing them needs no network.
      # Under tfds.testing.mock_data nothing is downloaded, so nothing is probed.
      download = type(builder).download_and_prepare
      mocked = download.__module__.startswith('tensorflow_datasets.testing')
      unreachable = None if mocked else unreachable_host(list(builder.url_infos or {}))
      if unreachable:
        raise UserError(f'dataset.data_dir: TFDS dataset {name!r} is not prepared in data_dir '
                        f'{searched} and its download host {unreachable} is unreachable; '
                        f'for data on disk use {_OFFLINE_EXAMPLE}, or prepare it where there '
                        f'is network (`tfds build {name} --data_dir=...`) and set '
                        'dataset.data_dir')
      try:
        builder.download_and_prepare()
      except Exception as e:  # pylint: disable=broad-except  # offline: any network/import error
        reason = str(e).splitlines()[0] if str(e) else ''
        raise UserError(f'dataset.data_dir: TFDS dataset {name!r} is not in data_dir '
                        f'{data_dir or "(the TFDS default)"} and could not be downloaded '
                        f'({type(e).__name__}: {reason}); run `tfds build {name}` where there '
                        f'is network, or {_OFFLINE_HINT}') from e
    self._builder = builder
    self._image_shape = tuple(image.shape)
    self._name = name
    self.split_sizes = {n: s.num_examples for n, s in builder.info.splits.items()}
    self.num_classes = label.num_classes
    self.class_names = tuple(label.names)

  def cache_key(self, split: str) -> dict[str, Any] | None:
    from etils import epath  # pylint: disable=g-import-not-at-top  # a tfds dependency

    directory = epath.Path(self._builder.data_dir)
    if not directory.is_dir():
      return None
    # Size and mtime of every prepared file, so that preparing the data again invalidates it.
    files = sorted((p.name, *_size_and_mtime(p)) for p in directory.iterdir())
    return dict(source='tfds', name=self._name, version=str(self._builder.info.version),
                data_dir=str(directory), files=files, split=split)

  def decode(self, split: str) -> LabeledImages:
    image_key, label_key = self._image_key, self._label_key
    ds = self._builder.as_dataset(split=split, shuffle_files=False, batch_size=_BATCH)
    ds = ds.map(lambda example: (example[image_key], example[label_key]))
    images, labels = [], []
    for image_batch, label_batch in self._tfds.as_numpy(ds):
      images.append(image_batch)
      labels.append(label_batch)
    if not images:  # the caller names the config field
      return LabeledImages(np.zeros((0, *self._image_shape), np.uint8), np.zeros(0, np.int32))
    return LabeledImages(np.concatenate(images), np.concatenate(labels).astype(np.int32))
