"""TFDS split syntax resolved against base-split sizes (`jaxcls.data.splits`)."""

import re
import sys

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


# Strings at the edges of the grammar and the arithmetic: rounding halves, negative and
# out-of-range bounds, mixed units, shards, whitespace, underscores.
GRID = [
    'train', 'test', 'all', 'train+test', 'train + test', 'train[:10]', 'train[10:]',
    'train[-10:]', 'train[:-10]', 'train[-30:]', 'train[:-30]', 'train[-31:]', 'train[30:]',
    'train[31:]', 'train[5:3]', 'train[0:0]', 'train[:0]', 'train[:10%]', 'train[-10%:]',
    'train[-1%:]', 'train[:-1%]', 'train[99%:]', 'train[:50%]', 'train[25%:75%]',
    'train[-100%:]', 'train[:100%]', 'train[:101%]', 'train[:-101%]', 'train[:12.5%]',
    'train[1_0:]', 'train[10%:20]', 'train[:0shard]', 'train[0shard]', 'train[1shard:]',
    'train[:1shard]', 'train[-1shard:]', 'train[0]', 'train[3%]', 'train[::]', 'train[:]',
    'train[]', 'train[a:b]', 'train[1.5:]', 'all[:10]', 'val', 'train+val', 'Train', 'train ',
    ' train', 'train[:5]+test[-2:]+train[-5:]', 'train[.:]', 'train[-:]', 'train[:1e1]',
]


@pytest.mark.parametrize('sizes', [{'train': 30, 'test': 7}, {'train': 1437, 'test': 360},
                                   {'train': 60000, 'test': 10000}, {'train': 0, 'test': 5}])
def test_same_as_tfds(sizes):
  """Each string selects what `tfds.load` selects, or is refused where TFDS refuses it (but for
  the negative percent bounds that round to no example, corrected above)."""
  tfds = pytest.importorskip('tensorflow_datasets')
  infos = {name: tfds.core.SplitInfo(name=name, shard_lengths=[size], num_bytes=0)
           for name, size in sizes.items()}
  for spec in GRID:
    if any(round(-float(v) * size / 100) == 0 for v in re.findall(r'-([\d.]+)%', spec)
           for size in sizes.values()):
      continue
    try:
      expected = [Slice(a.splitname, a.from_ or 0, sizes[a.splitname] if a.to is None else a.to)
                  for a in tfds.core.ReadInstruction.from_spec(spec).to_absolute(infos)]
    except (ValueError, NotImplementedError):
      expected = None
    try:
      got = splits.resolve(spec, 'f', sizes)
    except UserError as e:
      got = None if 'selects no examples' not in str(e) else []
    if expected is not None and got == [] and splits.num_examples(expected) == 0:
      continue  # TFDS returns the empty slices; jaxcls refuses an empty split
    assert got == expected, spec


def test_needs_no_tensorflow_datasets(monkeypatch):
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)  # `import` now fails
  assert splits.resolve('train[:10%]+test', 'f', SIZES) == [Slice('train', 0, 6000),
                                                              Slice('test', 0, 10000)]
