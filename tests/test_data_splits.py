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


@pytest.mark.parametrize('spec,expected', [
    # A negative percent bound that rounds to no example keeps its sign: the last 1% of 30
    # examples is none of them (like train[99%:]), and all but the last 1% is all 30.
    ('train[-1%:]+test', [Slice('train', 30, 30), Slice('test', 0, 10)]),
    ('train[:-1%]', [Slice('train', 0, 30)]),
    ('train[99%:]+test', [Slice('train', 30, 30), Slice('test', 0, 10)]),
    ('train[10%:-1%]', [Slice('train', 3, 30)]),
    ('test+train[-1.5%:]', [Slice('test', 0, 10), Slice('train', 30, 30)]),
    # Where the bound rounds to at least one example TFDS's answer stands.
    ('train[-10%:]', [Slice('train', 27, 30)]),
    ('train[:-10%]', [Slice('train', 0, 27)]),
    ('train[-2%:]', [Slice('train', 29, 30)]),  # 0.6 of an example rounds to 1
])
def test_negative_percent_bounds_keep_their_sign(spec, expected):
  slices = splits.resolve(spec, 'dataset.train_split', {'train': 30, 'test': 10})
  assert slices == expected
  # TFDS reads each source's split string itself: it gets the corrected slices, exactly.
  tfds_spec = splits.tfds_spec(spec, slices)
  assert splits.resolve(tfds_spec, 'f', {'train': 30, 'test': 10}) == expected
  assert ('%' in tfds_spec) == ('%' in spec and '-' not in spec)


def test_a_negative_percent_that_selects_nothing_is_refused():
  with pytest.raises(UserError, match=r"^dataset.train_split: split 'train\[-1%:\]' selects no "
                                      r'examples'):
    splits.resolve('train[-1%:]', 'dataset.train_split', {'train': 30})


def test_tfds_spec_is_the_spec_itself_when_nothing_was_corrected():
  for spec in ('train[:10%]', 'train[-5:]', 'all', 'test'):
    assert splits.tfds_spec(spec, splits.resolve(spec, 'f', {'train': 30, 'test': 10})) == spec
  assert splits.tfds_spec('train[-1%:]+test', None) == 'train[-1%:]+test'  # sizes unknown


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
