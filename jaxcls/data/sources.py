"""Every dataset through one call: `train, eval_, info = load_dataset(config.dataset)`.

`config.dataset.source` picks where the images come from: `tfds` (a TFDS name and data_dir),
`folder` (an image-folder directory or zip), `idx` (MNIST-style idx files) or `embedded`
(scikit-learn's digits, no files at all). Both split fields use TFDS split syntax for every
source; they are checked before anything is decoded, so a typo in `eval_split` does not cost a
decode of the train split. Offline sources decode whole base splits (cached on disk, shared by
train and eval) and slice them here; TFDS reads each split string itself.
"""

import functools
import os

from absl import logging
import ml_collections
import numpy as np

from jaxcls.data import cache
from jaxcls.data import splits
from jaxcls.data.base import DatasetInfo, LabeledImages, Source
from jaxcls.data.embedded import EmbeddedSource
from jaxcls.data.folder import FolderSource
from jaxcls.data.idx import IdxSource
from jaxcls.errors import UserError

SOURCES = ('tfds', 'folder', 'idx', 'embedded')
_FIELDS = ('train_split', 'eval_split')


def open_source(config: ml_collections.ConfigDict) -> Source:
  """The source `config.dataset` names, opened (listed, not decoded)."""
  if config.source == 'tfds':
    from jaxcls.data import tfds_source  # pylint: disable=g-import-not-at-top  # imports TF
    data_dir = os.path.expanduser(config.data_dir) if config.data_dir else None
    return tfds_source.TfdsSource(config.name, data_dir)
  if config.source == 'embedded':
    return EmbeddedSource(config.name)
  if config.source in ('folder', 'idx'):
    if not config.path:
      what = ('an image-folder directory or .zip' if config.source == 'folder'
              else 'a directory of idx files')
      raise UserError(f'dataset.path: required with dataset.source={config.source!r}; set it to '
                      f'{what}')
    path = os.path.expanduser(config.path)
    if not os.path.exists(path):
      raise UserError(f'dataset.path: {config.path!r} does not exist; check the path')
    source_cls = FolderSource if config.source == 'folder' else IdxSource
    return source_cls(path, config.name)
  raise UserError(f"dataset.source: unknown source {config.source!r}; choose one of: "
                  f"{', '.join(SOURCES)}")


def _unify(parts: list[tuple[str, LabeledImages]], field: str) -> list[LabeledImages]:
  """The parts with one (H, W) and one channel count (C=1 parts repeated when others are RGB)."""
  first_name, first = parts[0]
  height, width = first.images.shape[1:3]
  channels = max(part.images.shape[3] for _, part in parts)
  unified = []
  for name, part in parts:
    h, w, c = part.images.shape[1:]
    if (h, w) != (height, width):
      raise UserError(f'{field}: {name!r} has {w}x{h} images but {first_name!r} has '
                      f'{width}x{height}; every split must have one image size')
    if c != channels:
      if c != 1:
        raise UserError(f'{field}: {name!r} has {c} channels but another split has {channels}')
      part = LabeledImages(np.repeat(part.images, channels, axis=3), part.labels)
    unified.append(part)
  return unified


def _concatenate(parts: list[tuple[str, LabeledImages]], field: str) -> LabeledImages:
  unified = _unify(parts, field)
  if len(unified) == 1:
    return unified[0]  # no copy for a plain split such as 'train'
  return LabeledImages(np.concatenate([p.images for p in unified]),
                       np.concatenate([p.labels for p in unified]))


def _check_class_sets(source: Source, resolved: dict[str, list[splits.Slice] | None]) -> None:
  """The eval split's classes must all be trained: a split may lack a class, not add one.

  Only sources whose base splits name their classes apart (image folders) can disagree.
  """
  per_split = source.split_classes
  if per_split is None or None in resolved.values():
    return
  classes = {field: set().union(*(per_split[s.split] for s in slices))
             for field, slices in resolved.items()}
  added = classes['eval_split'] - classes['train_split']
  if added:
    folders = lambda field: '+'.join(sorted({f'{s.split}/' for s in resolved[field]}))
    only_train = classes['train_split'] - classes['eval_split']
    raise UserError(
        f'dataset.path: classes {", ".join(sorted(added))} are only in the eval split '
        f'({folders("eval_split")})' + (f', classes {", ".join(sorted(only_train))} only in '
                                        f'the train split ({folders("train_split")})'
                                        if only_train else '')
        + '; a split may lack a class but not add one, so rename the class folders to match')


def load_dataset(
    config: ml_collections.ConfigDict,
) -> tuple[LabeledImages, LabeledImages, DatasetInfo]:
  """Loads the train and eval splits of `config` (the `config.dataset` ConfigDict).

  Returns:
    `(train, eval_, info)`: uint8 (N, H, W, C) images with int32 labels for each split, and the
    dataset's `DatasetInfo`.

  Raises:
    UserError: a bad source, name, path, split, file or label; the message names the field.
  """
  # `num_classes` may be absent from a ConfigDict built by hand; None infers it from the source.
  num_classes = config.get('num_classes')
  if num_classes is not None and num_classes < 1:
    raise UserError(f'dataset.num_classes: {num_classes} is not a positive number of classes; '
                    'set it to one, or to None to infer it from the data')
  source = open_source(config)
  specs = {field: getattr(config, field) for field in _FIELDS}
  resolved = {field: splits.resolve(spec, f'dataset.{field}', source.split_sizes)
              for field, spec in specs.items()}
  _check_class_sets(source, resolved)
  cache_dir = os.path.expanduser(config.cache_dir) if config.cache_dir else cache.default_dir()

  bases: dict[str, LabeledImages] = {}  # decoded base splits, shared by train and eval

  def base(split: str) -> LabeledImages:
    if split not in bases:
      bases[split] = cache.load_or_build(cache_dir, source.cache_key(split),
                                         source.split_sizes[split],
                                         functools.partial(source.decode, split))
    return bases[split]

  loaded = {}
  for field, spec in specs.items():
    slices = resolved[field]
    if source.reads_split_strings:
      split = splits.tfds_spec(spec, slices)
      key = source.cache_key(split)
      if slices is None or key is None:
        logging.info('Not caching %s split %r: TFDS reports no split sizes or files (as under '
                     'tfds.testing.mock_data).', config.name, spec)
        data = source.decode(split)
      else:
        data = cache.load_or_build(cache_dir, key, splits.num_examples(slices),
                                   functools.partial(source.decode, split))
    else:
      parts = [(s.split, LabeledImages(base(s.split).images[s.start:s.stop],
                                       base(s.split).labels[s.start:s.stop])) for s in slices]
      data = _concatenate(parts, f'dataset.{field}')
    if not len(data.labels):
      raise UserError(f'dataset.{field}: split {spec!r} selects no examples')
    loaded[field] = data
  train, eval_ = _unify([(specs[f], loaded[f]) for f in _FIELDS], 'dataset.eval_split')

  inferred = num_classes is None
  num_classes = source.num_classes if inferred else num_classes
  for field, data in zip(_FIELDS, (train, eval_)):
    outside = data.labels[(data.labels < 0) | (data.labels >= num_classes)]
    if outside.size:
      raise UserError(
          f'dataset.num_classes: dataset.{field} {specs[field]!r} has label {int(outside[0])}, '
          f'outside [0, {num_classes}) ({"inferred from the source" if inferred else "as set"}); '
          f'set dataset.num_classes to at least {int(data.labels.max()) + 1}')
  class_names = source.class_names
  if class_names is not None and len(class_names) != num_classes:
    class_names = None  # names for another number of classes would mislabel the ids
  info = DatasetInfo(name=config.name, num_classes=num_classes,
                     image_shape=tuple(train.images.shape[1:]), class_names=class_names,
                     train_size=len(train.labels), eval_size=len(eval_.labels))
  logging.info('Dataset %s (%s): train %s %d, eval %s %d, images %s, %d classes.', config.name,
               config.source, specs['train_split'], info.train_size, specs['eval_split'],
               info.eval_size, info.image_shape, num_classes)
  return train, eval_, info
