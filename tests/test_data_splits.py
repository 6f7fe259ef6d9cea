"""TFDS split syntax resolved against base-split sizes (`jaxcls.data.splits`)."""

import pytest

from jaxcls.data import splits
from jaxcls.data.splits import Slice
from jaxcls.errors import UserError

SIZES = {'train': 60000, 'test': 10000}


@pytest.mark.parametrize('spec, expected', [
    ('train', [Slice('train', 0, 60000)]),
    ('train[:30000]', [Slice('train', 0, 30000)]),
    ('train[30000:]+test', [Slice('train', 30000, 60000), Slice('test', 0, 10000)]),
    ('train[:3]+test', [Slice('train', 0, 3), Slice('test', 0, 10000)]),
    ('train[:10%]', [Slice('train', 0, 6000)]),
    ('train[-10%:]', [Slice('train', 54000, 60000)]),
    ('test[-1000:]', [Slice('test', 9000, 10000)]),
    ('test[25%:75%]', [Slice('test', 2500, 7500)]),
    ('train[:100] + test[:5]', [Slice('train', 0, 100), Slice('test', 0, 5)]),
    ('all', [Slice('train', 0, 60000), Slice('test', 0, 10000)]),
])
def test_resolve(spec, expected):
  assert splits.resolve(spec, 'dataset.train_split', SIZES) == expected


def test_percent_rounds_to_closest_example():
  # TFDS 'closest' rounding: 10% of 1437 is 143.7 -> 144.
  assert splits.resolve('train[:10%]', 'f', {'train': 1437}) == [Slice('train', 0, 144)]


def test_seed_b_fashion_mnist_split_sizes():
  train = splits.resolve('train[:30000]', 'dataset.train_split', SIZES)
  eval_ = splits.resolve('train[30000:]+test', 'dataset.eval_split', SIZES)
  assert splits.num_examples(train) == 30000
  assert splits.num_examples(eval_) == 40000


@pytest.mark.parametrize('spec, words', [
    ('val', ["unknown split 'val'"]),
    ('train[::]', ['cannot parse', 'unrecognized split format']),
    ('train[:101%]', ['cannot parse', 'percent']),
    ('train[a:b]', ['cannot parse']),
    ('train[:70000]', ['incompatible with 60000 examples']),
    ('', ['empty split']),
    ('train[5:5]', ['selects no examples']),
])
def test_bad_split_names_field_value_and_available_splits(spec, words):
  with pytest.raises(UserError) as e:
    splits.resolve(spec, 'dataset.eval_split', SIZES)
  message = str(e.value)
  assert message.startswith('dataset.eval_split: ')
  assert repr(spec) in message
  assert 'train (60000), test (10000)' in message
  assert '\n' not in message
  for word in words:
    assert word in message.lower()


def test_without_sizes_only_the_syntax_is_checked():
  assert splits.resolve('anything[:10%]+other', 'f', {}) is None
  with pytest.raises(UserError, match=r"^dataset.train_split: cannot parse split 'train\[::\]'"):
    splits.resolve('train[::]', 'dataset.train_split', {})
