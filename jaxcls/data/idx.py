"""The original MNIST / Fashion-MNIST idx files: `{train,t10k}-{images-idx3,labels-idx1}-ubyte`.

Each file may be gzipped (`.gz`); the raw file wins when both exist. The idx header is a
big-endian magic number `0x0000TTDD` (TT=0x08 for unsigned bytes, DD the number of dimensions)
followed by DD big-endian uint32 sizes; images are (N, rows, cols), labels (N,). The split
names are `train` and `test` (the `t10k` files), in the files' own order. The number of classes
is the largest label over both splits plus one.
"""

import gzip
import os
from typing import Any
import zlib

import numpy as np

from jaxcls.data.base import LabeledImages, Source
from jaxcls.errors import UserError

_PREFIXES = {'train': 'train', 'test': 't10k'}
_UBYTE = 0x08


def _find(directory: str, base: str) -> str | None:
  for candidate in (base, base + '.gz'):
    path = os.path.join(directory, candidate)
    if os.path.isfile(path):
      return path
  return None


def read_idx(path: str, ndim: int) -> np.ndarray:
  """The uint8 array stored in idx file `path`, after checking its header and length."""
  try:
    if path.endswith('.gz'):
      with gzip.open(path, 'rb') as f:
        data = f.read()
    else:
      with open(path, 'rb') as f:
        data = f.read()
  # gzip: a bad header or CRC is an OSError, truncation an EOFError, a corrupt body zlib.error.
  except (OSError, EOFError, zlib.error) as e:
    raise UserError(f'dataset.path: cannot read idx file {path!r} ({e}); download it again') from e
  header = 4 + 4 * ndim
  if len(data) < header:
    raise UserError(f'dataset.path: idx file {path!r} is truncated ({len(data)} bytes, shorter '
                    'than its header); download it again')
  magic = int.from_bytes(data[:4], 'big')
  if magic != (_UBYTE << 8 | ndim):
    raise UserError(f'dataset.path: {path!r} is not an idx file of {ndim}-D unsigned bytes '
                    f'(magic number {magic:#010x}, expected {_UBYTE << 8 | ndim:#010x})')
  shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim))
  expected = header + int(np.prod(shape))
  if len(data) != expected:
    state = 'truncated' if len(data) < expected else 'longer than its header says'
    raise UserError(f'dataset.path: idx file {path!r} is {state} ({len(data)} bytes, its header '
                    f'{shape} needs {expected}); download it again')
  # A copy: arrays over `bytes` are read-only, and callers may write into what they get.
  return np.frombuffer(data, np.uint8, offset=header).reshape(shape).copy()


class IdxSource(Source):
  """A directory of idx files; `decode` takes `train` or `test`."""

  def __init__(self, path: str, name: str):
    self._name = name
    self._path = os.path.realpath(path)
    if not os.path.isdir(self._path):
      raise UserError(f'dataset.path: {path!r} is not a directory; give the directory that holds '
                      'train-images-idx3-ubyte[.gz] and friends')
    self._files: dict[str, tuple[str, str]] = {}
    for split, prefix in _PREFIXES.items():
      images = _find(self._path, f'{prefix}-images-idx3-ubyte')
      labels = _find(self._path, f'{prefix}-labels-idx1-ubyte')
      if images and labels:
        self._files[split] = (images, labels)
      elif images or labels:
        missing = f'{prefix}-labels-idx1-ubyte' if images else f'{prefix}-images-idx3-ubyte'
        raise UserError(f'dataset.path: {path!r} has {images or labels!r} but no {missing}[.gz]')
    if not self._files:
      raise UserError(f'dataset.path: no idx files in {path!r}; expected '
                      'train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], '
                      't10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]')
    # Label files are small: reading them all up front gives the sizes and the class count.
    self._labels = {split: read_idx(labels, 1) for split, (_, labels) in self._files.items()}
    self.split_sizes = {split: len(labels) for split, labels in self._labels.items()}
    self.num_classes = max(int(labels.max(initial=0)) for labels in self._labels.values()) + 1
    self.class_names = None

  def cache_key(self, split: str) -> dict[str, Any]:
    files = []
    for path in self._files[split]:
      stat = os.stat(path)
      files.append((path, stat.st_size, stat.st_mtime_ns))
    return dict(source='idx', name=self._name, path=self._path, files=files, split=split)

  def decode(self, split: str) -> LabeledImages:
    images_path, labels_path = self._files[split]
    images = read_idx(images_path, 3)
    labels = self._labels[split]
    if len(images) != len(labels):
      raise UserError(f'dataset.path: {images_path!r} holds {len(images)} images but '
                      f'{labels_path!r} holds {len(labels)} labels; the counts must match')
    return LabeledImages(images[..., None], labels.astype(np.int32))
