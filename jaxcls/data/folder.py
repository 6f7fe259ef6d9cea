"""Image-folder trees, `split/class/image.{png,jpg,jpeg,bmp}`, as a directory or a `.zip` of one.

The tree may sit inside wrapping folders (`cifar10-jpeg/train/cat/0001.jpg`): the root is the
folder that holds the split folders, found from the image paths. Two details are easy to get
wrong:

* Class ids index the sorted union of class-folder names over all splits, so train and test agree
  even when a split lacks a class (CIFAR-10's alphabetical order is its standard label order).
  The eval split may lack a class but not add one (`cat,dog` trained, `Cat,dog` evaluated would
  cap the accuracy unseen): `load_dataset` refuses that, naming the classes.
* Within a split, files are sorted by name inside each class and the classes are interleaved:
  the k-th image of every class, then the (k+1)-th. A class-major order would make a prefix slice
  such as `train[:45000]` drop whole classes; interleaved, every slice keeps the class balance.

Images are decoded with Pillow. A split whose images are all grayscale gives C=1; any colour image
makes it C=3, with grayscale images repeated over the channels (what Pillow's L->RGB does).
"""

import concurrent.futures
import hashlib
import io
import os
from typing import Any
import zipfile
import zlib

from absl import logging
import numpy as np
from PIL import Image

from jaxcls.data.base import LabeledImages, Source
from jaxcls.errors import UserError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp')
_GRAY_MODES = ('1', 'L', 'LA', 'La')
_COLOUR_MODES = ('RGB', 'RGBA', 'RGBa', 'RGBX', 'P', 'PA', 'CMYK', 'YCbCr', 'LAB', 'HSV')
_CHUNK = 256  # images per thread-pool task: amortises the task overhead over tiny images


def _is_skipped(rel: str) -> bool:
  # macOS zips carry resource forks under __MACOSX/ and ._name files; editors leave dotfiles.
  return any(part.startswith('.') or part == '__MACOSX' for part in rel.split('/'))


def _decode_image(data: bytes, member: str) -> np.ndarray:
  """(H, W) for a grayscale image, (H, W, 3) for a colour one."""
  try:
    with Image.open(io.BytesIO(data)) as image:
      if image.mode in _GRAY_MODES:
        return np.asarray(image if image.mode == 'L' else image.convert('L'))
      if image.mode in _COLOUR_MODES:
        return np.asarray(image if image.mode == 'RGB' else image.convert('RGB'))
      mode = image.mode
  except (OSError, SyntaxError, ValueError, zlib.error, Image.DecompressionBombError) as e:
    raise UserError(f'dataset.path: cannot decode image {member!r} ({e}); fix or remove the '
                    'file') from e
  raise UserError(f'dataset.path: image {member!r} has mode {mode!r}; only 8-bit grayscale or '
                  'colour images are supported')


class FolderSource(Source):
  """An image-folder tree; `decode` takes a split folder name."""

  def __init__(self, path: str, name: str):
    self._name = name
    self._path = os.path.realpath(path)
    if os.path.isdir(self._path):
      self._zip = None
      self._stats = {}  # member -> (size, mtime_ns), for the directory's cache keys
      for directory, _, files in os.walk(self._path, followlinks=True):
        for file in files:
          full = os.path.join(directory, file)
          try:
            stat = os.stat(full)
          except OSError as e:  # a dangling symlink, a file gone since the listing
            raise UserError(f'dataset.path: cannot read {full!r} ({e.strerror}); fix or remove '
                            'it') from e
          self._stats[os.path.relpath(full, self._path).replace(os.sep, '/')] = (
              stat.st_size, stat.st_mtime_ns)
      members = list(self._stats)
    elif zipfile.is_zipfile(self._path):
      # Kept open: reading the central directory of 60,000 members takes 0.5 s.
      try:
        self._zip = zipfile.ZipFile(self._path)
      except (OSError, zipfile.BadZipFile) as e:  # is_zipfile reads only the end record
        raise UserError(f'dataset.path: cannot read the zip file {path!r} ({e}); download or '
                        'build it again') from e
      members = [m for m in self._zip.namelist() if not m.endswith('/')]
    else:
      raise UserError(f'dataset.path: {path!r} is neither a directory nor a .zip file; give an '
                      'image-folder tree split/class/image.png (or a .zip of one)')
    self._layout(path, members)

  def _layout(self, path: str, members: list[str]) -> None:
    images = sorted(m for m in members
                    if m.lower().endswith(IMAGE_EXTENSIONS) and not _is_skipped(m))
    ignored = len(members) - len(images)
    if ignored:
      logging.info('Folder %s: ignoring %d files that are not %s images.', path, ignored,
                   '/'.join(IMAGE_EXTENSIONS))
    if not images:
      raise UserError(f'dataset.path: no {"/".join(IMAGE_EXTENSIONS)} images in {path!r}; '
                      'expected an image-folder tree split/class/image.png')
    reference = images[0].split('/')
    if len(reference) < 3:
      raise UserError(f'dataset.path: image {images[0]!r} in {path!r} is not inside '
                      'split/class/ folders; expected split/class/image.png')
    root = reference[:-3]
    per_split: dict[str, dict[str, list[str]]] = {}
    for member in images:
      parts = member.split('/')
      if len(parts) != len(reference) or parts[:-3] != root:
        raise UserError(f'dataset.path: image {member!r} in {path!r} is not at the '
                        f'split/class/image depth of {images[0]!r}; move or remove it')
      split, label, _ = parts[-3:]
      per_split.setdefault(split, {}).setdefault(label, []).append(member)

    self.split_classes = {split: frozenset(classes) for split, classes in per_split.items()}
    self.class_names = tuple(sorted({c for classes in per_split.values() for c in classes}))
    self.num_classes = len(self.class_names)
    class_id = {name: i for i, name in enumerate(self.class_names)}
    self._order: dict[str, list[tuple[str, int]]] = {}
    for split, classes in sorted(per_split.items()):
      # (rank within class, class id): the interleaved order of the module docstring.
      ranked = sorted((rank, class_id[label], member)
                      for label, files in classes.items()
                      for rank, member in enumerate(sorted(files)))
      self._order[split] = [(member, label) for _, label, member in ranked]
    self.split_sizes = {split: len(order) for split, order in self._order.items()}

  def cache_key(self, split: str) -> dict[str, Any]:
    if self._zip is not None:
      stat = os.stat(self._path)
      files = (stat.st_size, stat.st_mtime_ns)
    else:
      listing = '\n'.join(f'{m}\t{self._stats[m][0]}\t{self._stats[m][1]}'
                          for m, _ in sorted(self._order[split]))
      files = hashlib.sha256(listing.encode()).hexdigest()
    return dict(source='folder', name=self._name, path=self._path, files=files,
                classes=self.class_names, split=split)

  def decode(self, split: str) -> LabeledImages:
    order = self._order[split]
    members = [member for member, _ in order]
    labels = np.array([label for _, label in order], dtype=np.int32)

    def read(member: str) -> bytes:
      try:
        if self._zip is not None:
          return self._zip.read(member)  # ZipFile serialises reads of one archive across threads
        with open(os.path.join(self._path, member), 'rb') as f:
          return f.read()
      except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise UserError(f'dataset.path: cannot read {member!r} from {self._path!r} ({e}); fix '
                        'or remove the file') from e

    def decode_chunk(chunk: list[str]) -> list[np.ndarray]:
      return [_decode_image(read(member), member) for member in chunk]

    chunks = [members[i:i + _CHUNK] for i in range(0, len(members), _CHUNK)]
    with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
      arrays = [a for chunk in pool.map(decode_chunk, chunks) for a in chunk]
    return LabeledImages(_stack(arrays, members), labels)


def _stack(arrays: list[np.ndarray], members: list[str]) -> np.ndarray:
  """One (N, H, W, C) uint8 array; every image must have the first image's size."""
  height, width = arrays[0].shape[:2]
  channels = 3 if any(a.ndim == 3 for a in arrays) else 1
  images = np.empty((len(arrays), height, width, channels), np.uint8)
  for i, (array, member) in enumerate(zip(arrays, members)):
    if array.shape[:2] != (height, width):
      raise UserError(
          f'dataset.path: image {member!r} is {array.shape[1]}x{array.shape[0]} but '
          f'{members[0]!r} is {width}x{height}; every image must have one size (resize them)')
    images[i] = array[..., None] if array.ndim == 2 else array
  return images
