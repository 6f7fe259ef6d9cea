"""Image-folder trees, as a directory and as a zip (`jaxcls.data.folder` via `load_dataset`)."""

import os
import zipfile

import numpy as np
from PIL import Image
import pytest

from configs import default
from jaxcls import data
from jaxcls.errors import UserError

H, W = 4, 5  # not square, so a transposed image would show


def dataset_config(tmp_path, **overrides):
  config = default.get_config().dataset
  config.source = 'folder'
  config.name = 'toy'
  config.cache_dir = str(tmp_path / 'cache')
  config.update(overrides)
  return config


def make_image(seed, channels):
  shape = (H, W) if channels == 1 else (H, W, channels)
  return np.random.RandomState(seed).randint(0, 256, shape, dtype=np.uint8)


def write_tree(root, layout, ext='png'):
  """layout: {split: {class: [array, ...]}}; files are named 000.ext, 001.ext, ..."""
  for split, classes in layout.items():
    for label, images in classes.items():
      os.makedirs(root / split / label, exist_ok=True)
      for i, image in enumerate(images):
        Image.fromarray(image).save(root / split / label / f'{i:03d}.{ext}')


def zip_tree(root, zip_path, prefix=''):
  with zipfile.ZipFile(zip_path, 'w') as zf:
    for directory, _, files in os.walk(root):
      for file in sorted(files):
        full = os.path.join(directory, file)
        zf.write(full, prefix + os.path.relpath(full, root).replace(os.sep, '/'))


@pytest.fixture
def rgb_layout():
  # 'ant' and 'cat' only in train (test may lack a class, not add one); ids sorted by name.
  return {
      'train': {'cat': [make_image(i, 3) for i in range(3)],
                'ant': [make_image(10 + i, 3) for i in range(2)],
                'dog': [make_image(20 + i, 3) for i in range(3)],
                'bird': [make_image(50, 3)]},
      'test': {'dog': [make_image(30, 3)], 'bird': [make_image(40 + i, 3) for i in range(2)]},
  }


def test_directory_png_ids_order_and_pixels(tmp_path, rgb_layout):
  write_tree(tmp_path / 'tree', rgb_layout)
  train, eval_, info = data.load_dataset(dataset_config(tmp_path, path=str(tmp_path / 'tree')))

  assert info.class_names == ('ant', 'bird', 'cat', 'dog')
  assert info.num_classes == 4
  assert info.image_shape == (H, W, 3)
  assert (info.train_size, info.eval_size) == (9, 3)
  assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
  # Interleaved: the k-th file of every class (by class id), then the (k+1)-th.
  ant, cat, dog = rgb_layout['train']['ant'], rgb_layout['train']['cat'], rgb_layout['train']['dog']
  bird = rgb_layout['train']['bird']
  expected = [(ant[0], 0), (bird[0], 1), (cat[0], 2), (dog[0], 3), (ant[1], 0), (cat[1], 2),
              (dog[1], 3), (cat[2], 2), (dog[2], 3)]
  np.testing.assert_array_equal(train.labels, [label for _, label in expected])
  np.testing.assert_array_equal(train.images, np.stack([image for image, _ in expected]))
  np.testing.assert_array_equal(eval_.labels, [1, 3, 1])
  bird, dog_test = rgb_layout['test']['bird'], rgb_layout['test']['dog']
  np.testing.assert_array_equal(eval_.images, np.stack([bird[0], dog_test[0], bird[1]]))


def test_files_sorted_by_name_within_a_class(tmp_path):
  images = [make_image(i, 3) for i in range(3)]
  for name, image in zip(['b.png', 'c.png', 'a.png'], images):
    os.makedirs(tmp_path / 'tree/train/x', exist_ok=True)
    Image.fromarray(image).save(tmp_path / 'tree/train/x' / name)
  train, _, _ = data.load_dataset(
      dataset_config(tmp_path, path=str(tmp_path / 'tree'), eval_split='train'))
  np.testing.assert_array_equal(train.images, np.stack([images[2], images[0], images[1]]))


def test_zip_with_wrapping_folder_and_junk_equals_directory(tmp_path, rgb_layout):
  write_tree(tmp_path / 'tree', rgb_layout, ext='jpg')
  (tmp_path / 'tree' / 'README.txt').write_text('not an image')
  zip_tree(tmp_path / 'tree', tmp_path / 'toy.zip', prefix='toy-jpeg/')
  with zipfile.ZipFile(tmp_path / 'toy.zip', 'a') as zf:
    zf.writestr('__MACOSX/toy-jpeg/train/cat/._000.jpg', b'resource fork')

  from_dir = data.load_dataset(dataset_config(tmp_path, path=str(tmp_path / 'tree')))
  from_zip = data.load_dataset(dataset_config(tmp_path, path=str(tmp_path / 'toy.zip')))
  for a, b in zip(from_dir[:2], from_zip[:2]):
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
  assert from_dir[2] == from_zip[2]
  # JPEG is lossy: close to the pixels written, not equal.
  error = np.abs(from_zip[1].images[1].astype(int) - rgb_layout['test']['dog'][0])
  assert error.mean() < 60 and from_zip[1].labels[1] == 3


@pytest.mark.parametrize('ext', ['png', 'jpg', 'bmp'])
def test_grayscale_tree_gives_one_channel(tmp_path, ext):
  layout = {'train': {'a': [make_image(1, 1)], 'b': [make_image(2, 1)]},
            'test': {'a': [make_image(3, 1)]}}
  write_tree(tmp_path / 'tree', layout, ext=ext)
  train, eval_, info = data.load_dataset(dataset_config(tmp_path, path=str(tmp_path / 'tree')))
  assert info.image_shape == (H, W, 1)
  assert train.images.shape == (2, H, W, 1) and eval_.images.shape == (1, H, W, 1)
  if ext != 'jpg':
    np.testing.assert_array_equal(train.images[..., 0], np.stack([make_image(1, 1),
                                                                  make_image(2, 1)]))


def test_grayscale_images_among_colour_ones_are_repeated_over_channels(tmp_path):
  gray, colour = make_image(1, 1), make_image(2, 3)
  write_tree(tmp_path / 'tree', {'train': {'a': [gray], 'b': [colour]},
                                 'test': {'a': [make_image(3, 1)]}})
  train, eval_, info = data.load_dataset(dataset_config(tmp_path, path=str(tmp_path / 'tree')))
  assert info.image_shape == (H, W, 3)
  np.testing.assert_array_equal(train.images[0], np.repeat(gray[..., None], 3, axis=2))
  np.testing.assert_array_equal(train.images[1], colour)
  # The all-grayscale test split is matched to the colour train split.
  np.testing.assert_array_equal(eval_.images[0], np.repeat(make_image(3, 1)[..., None], 3, 2))


def test_rgba_and_palette_images_become_rgb(tmp_path):
  os.makedirs(tmp_path / 'tree/train/a')
  rgba = make_image(1, 4)
  Image.fromarray(rgba, 'RGBA').save(tmp_path / 'tree/train/a/0.png')
  Image.fromarray(make_image(2, 3)).convert('P').save(tmp_path / 'tree/train/a/1.png')
  train, _, _ = data.load_dataset(
      dataset_config(tmp_path, path=str(tmp_path / 'tree'), eval_split='train'))
  assert train.images.shape == (2, H, W, 3)
  np.testing.assert_array_equal(train.images[0], rgba[..., :3])


def test_split_arithmetic_on_folder(tmp_path, rgb_layout):
  write_tree(tmp_path / 'tree', rgb_layout)
  config = dataset_config(tmp_path, path=str(tmp_path / 'tree'))
  train, eval_, _ = data.load_dataset(config)
  config.train_split, config.eval_split = 'train[:3]+test', 'train[-50%:]'
  train2, eval2, info = data.load_dataset(config)
  np.testing.assert_array_equal(train2.images,
                                np.concatenate([train.images[:3], eval_.images]))
  np.testing.assert_array_equal(train2.labels, np.concatenate([train.labels[:3], eval_.labels]))
  np.testing.assert_array_equal(eval2.labels, train.labels[5:])  # 50% of 9 rounds to 4
  assert (info.train_size, info.eval_size) == (6, 4)


def test_mixed_sizes_name_the_file(tmp_path):
  write_tree(tmp_path / 'tree', {'train': {'a': [make_image(1, 3)]}})
  Image.fromarray(np.zeros((H + 1, W, 3), np.uint8)).save(tmp_path / 'tree/train/a/big.png')
  with pytest.raises(UserError, match=r"^dataset.path: image 'train/a/big.png' is 5x5 but "
                                      r"'train/a/000.png' is 5x4"):
    data.load_dataset(dataset_config(tmp_path, path=str(tmp_path / 'tree'),
                                     eval_split='train'))


def test_train_and_eval_of_different_sizes(tmp_path):
  write_tree(tmp_path / 'tree', {'train': {'a': [make_image(1, 3)]}})
  os.makedirs(tmp_path / 'tree/test/a')
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'tree/test/a/0.png')
  with pytest.raises(UserError, match=r"^dataset.eval_split: 'test' has 8x8 images but "
                                      r"'train' has 5x4"):
    data.load_dataset(dataset_config(tmp_path, path=str(tmp_path / 'tree')))


def test_corrupt_image_names_the_file(tmp_path):
  write_tree(tmp_path / 'tree', {'train': {'a': [make_image(1, 3)]}}, ext='jpg')
  (tmp_path / 'tree/train/a/bad.jpg').write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')
  with pytest.raises(UserError, match=r"^dataset.path: cannot decode image 'train/a/bad.jpg'"):
    data.load_dataset(dataset_config(tmp_path, path=str(tmp_path / 'tree'),
                                     eval_split='train'))


def test_image_outside_class_folders(tmp_path):
  write_tree(tmp_path / 'tree', {'train': {'a': [make_image(1, 3)]}})
  Image.fromarray(make_image(2, 3)).save(tmp_path / 'tree/train/stray.png')
  with pytest.raises(UserError, match=r"^dataset.path: image 'train/stray.png' .* is not at the "
                                      r"split/class/image depth"):
    data.load_dataset(dataset_config(tmp_path, path=str(tmp_path / 'tree')))


@pytest.mark.parametrize('path, message', [
    (None, r"^dataset.path: required with dataset.source='folder'"),
    ('missing', r"^dataset.path: '.*missing' does not exist"),
    ('file.txt', r"^dataset.path: '.*file.txt' is neither a directory nor a .zip"),
    ('empty', r'^dataset.path: no .png/.jpg/.jpeg/.bmp images in'),
])
def test_bad_paths(tmp_path, path, message):
  (tmp_path / 'file.txt').write_text('hello')
  (tmp_path / 'empty').mkdir()
  config = dataset_config(tmp_path)
  config.path = None if path is None else str(tmp_path / path)
  with pytest.raises(UserError, match=message):
    data.load_dataset(config)


def test_unknown_split_lists_the_folder_splits(tmp_path, rgb_layout):
  write_tree(tmp_path / 'tree', rgb_layout)
  with pytest.raises(UserError, match=r"^dataset.eval_split: bad split 'val' .*available "
                                      r'splits: test \(3\), train \(9\)'):
    data.load_dataset(dataset_config(tmp_path, path=str(tmp_path / 'tree'), eval_split='val'))


def test_num_classes(tmp_path, rgb_layout):
  write_tree(tmp_path / 'tree', rgb_layout)
  with pytest.raises(UserError, match=r"^dataset.num_classes: dataset.train_split 'train' has "
                                      r'label 2, outside \[0, 2\) \(as set\)'):
    data.load_dataset(dataset_config(tmp_path, path=str(tmp_path / 'tree'), num_classes=2))
  _, _, info = data.load_dataset(
      dataset_config(tmp_path, path=str(tmp_path / 'tree'), num_classes=6))
  assert info.num_classes == 6 and info.class_names is None


@pytest.mark.parametrize('as_zip', [False, True])
def test_eval_classes_missing_from_train_are_refused_naming_them(tmp_path, as_zip):
  """`cat,dog` trained, `Cat,dog` evaluated: the eval-only class could never be predicted."""
  write_tree(tmp_path / 'tree', {'train': {'cat': [make_image(1, 3)], 'dog': [make_image(2, 3)]},
                                 'test': {'Cat': [make_image(3, 3)], 'dog': [make_image(4, 3)]}})
  path = tmp_path / 'tree'
  if as_zip:
    zip_tree(path, tmp_path / 'tree.zip')
    path = tmp_path / 'tree.zip'
  with pytest.raises(UserError, match=r'^dataset.path: classes Cat are only in the eval split '
                                      r'\(test/\), classes cat only in the train split '
                                      r'\(train/\); a split may lack a class but not add one, so '
                                      r'rename the class folders to match$'):
    data.load_dataset(dataset_config(tmp_path, path=str(path)))


def test_the_check_covers_every_base_split_of_a_split_string(tmp_path):
  write_tree(tmp_path / 'tree', {'train': {'a': [make_image(1, 3)]},
                                 'val': {'b': [make_image(2, 3)]},
                                 'test': {'a': [make_image(3, 3)], 'b': [make_image(4, 3)]}})
  config = dataset_config(tmp_path, path=str(tmp_path / 'tree'))
  with pytest.raises(UserError, match=r'^dataset.path: classes b are only in the eval split '
                                      r'\(test/\); a split'):
    data.load_dataset(config)
  config.train_split = 'train+val'  # now every eval class is trained
  _, eval_, info = data.load_dataset(config)
  assert info.class_names == ('a', 'b') and list(eval_.labels) == [0, 1]


def test_a_zip_with_a_corrupt_central_directory_is_one_line(tmp_path, rgb_layout):
  write_tree(tmp_path / 'tree', rgb_layout)
  zip_tree(tmp_path / 'tree', tmp_path / 'toy.zip')
  data_ = bytearray((tmp_path / 'toy.zip').read_bytes())
  start = data_.rindex(b'PK\x01\x02')  # the last central-directory entry
  data_[start:start + 4] = b'XXXX'
  (tmp_path / 'toy.zip').write_bytes(bytes(data_))
  with pytest.raises(UserError, match=r"^dataset.path: cannot read the zip file '.*toy.zip' "):
    data.load_dataset(dataset_config(tmp_path, path=str(tmp_path / 'toy.zip')))
