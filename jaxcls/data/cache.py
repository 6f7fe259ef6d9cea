"""Decoded splits on disk, so a restart does not decode the images again.

One uncompressed `.npz` per decoded split (`images`, `labels` and the JSON `key` it was built
for), named by a hash of the key. The key names everything the arrays depend on: the source, the
dataset, the resolved path with its size and mtime, the TFDS data_dir, the split and
`FORMAT_VERSION` (bump it when decoding changes). Writes go to a temporary file in the same
directory and are renamed into place, so a killed process never leaves half a cache file; a file
that does not load, or holds other arrays than the key promises, is ignored and rebuilt.
"""

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any
import zipfile
import zlib

from absl import logging
import numpy as np

from jaxcls.data.base import LabeledImages

FORMAT_VERSION = 1
ENV_VAR = 'JAXCLS_CACHE_DIR'


def default_dir() -> str:
  """`$JAXCLS_CACHE_DIR` (`~` expanded), else `~/.cache/jaxcls`."""
  return os.path.expanduser(os.environ.get(ENV_VAR) or os.path.join('~', '.cache', 'jaxcls'))


def path_for(cache_dir: str, key: Mapping[str, Any]) -> str:
  """The cache file for `key`: a readable prefix and a hash of the whole key."""
  digest = hashlib.sha256(_key_text(key).encode()).hexdigest()[:24]
  label = '-'.join(str(key.get(k, '')) for k in ('source', 'name', 'split'))
  label = re.sub(r'[^\w.+-]+', '_', label)[:80]
  return os.path.join(cache_dir, f'{label}-{digest}.npz')


def _key_text(key: Mapping[str, Any]) -> str:
  return json.dumps({'format': FORMAT_VERSION, **key}, sort_keys=True)


def _read(path: str, key_text: str, expected_size: int) -> LabeledImages:
  with np.load(path, allow_pickle=False) as f:
    stored_key, images, labels = str(f['key']), f['images'], f['labels']
  if stored_key != key_text:
    raise ValueError('written for another key')
  if images.dtype != np.uint8 or images.ndim != 4 or labels.dtype != np.int32:
    raise ValueError(f'unexpected arrays {images.dtype}{images.shape}, {labels.dtype}')
  if not len(images) == len(labels) == expected_size:
    raise ValueError(f'{len(images)} images, {len(labels)} labels, expected {expected_size}')
  return LabeledImages(images, labels)


def _write(path: str, key_text: str, data: LabeledImages) -> None:
  directory = os.path.dirname(path)
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-', suffix='.npz')
  try:
    with os.fdopen(fd, 'wb') as f:
      np.savez(f, images=data.images, labels=data.labels, key=np.array(key_text))
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a cache is as readable as what it caches
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def load_or_build(
    cache_dir: str,
    key: Mapping[str, Any],
    expected_size: int,
    build: Callable[[], LabeledImages],
) -> LabeledImages:
  """The arrays cached for `key`, else `build()`, written to the cache when it has `expected_size`
  examples (a mismatch means the data disagrees with its own metadata, so it is not kept)."""
  path = path_for(cache_dir, key)
  key_text = _key_text(key)
  what = f"{key.get('source')} {key.get('name')!r} split {key.get('split')!r}"
  if os.path.exists(path):
    try:
      start = time.perf_counter()
      data = _read(path, key_text, expected_size)
      logging.info('Loaded %s from cache %s (%d images, %.2f s).', what, path, len(data.labels),
                   time.perf_counter() - start)
      return data
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
      logging.warning('Ignoring unreadable cache file %s (%s); decoding again.', path, e)
  logging.info('Decoding %s (not cached yet).', what)
  start = time.perf_counter()
  data = build()
  logging.info('Decoded %s: %d images in %.1f s.', what, len(data.labels),
               time.perf_counter() - start)
  if len(data.labels) != expected_size:
    logging.warning('Not caching %s: decoded %d examples, its metadata says %d.', what,
                    len(data.labels), expected_size)
    return data
  try:
    _write(path, key_text, data)
    logging.info('Cached %s at %s.', what, path)
  except OSError as e:
    logging.warning('Could not write cache file %s (%s); continuing without it.', path, e)
  return data
