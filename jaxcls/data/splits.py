"""TFDS split syntax (`train[:30000]`, `train[30000:]+test`, `test[-10%:]`) for every source.

A split string means the same thing here as in `tfds.load`: parts joined by `+`, each a base
split with an optional slice `[from:to]` whose bounds are example counts, percentages (rounded
to the closest example, Python `round`) or shards; negative bounds count from the end; `all` is
every split. Offline sources describe each base split as one shard, so `train[1shard:]` is
empty there.

The grammar and arithmetic follow TFDS's `ReadInstruction.from_spec(...).to_absolute(...)`
(tensorflow_datasets/core/splits.py) rule for rule, and `tests/test_data_splits.py` checks them
against TFDS on a grid of strings where TFDS is installed. They are written out here because
offline sources must work without TensorFlow Datasets, which many JAX GPU images do not have.

One correction: TFDS loses the sign of a negative percent bound that rounds to zero examples
(`train[-1%:]` of 30 examples is the last 0.3 of an example, so none; TFDS reads the bound as
0 and selects all 30, and `train[:-1%]` none instead of all). Here such a bound sits at the end
of the split, and `tfds_spec` hands TFDS the corrected slices as absolute indices.
"""

from collections.abc import Mapping
import re
from typing import NamedTuple, Optional

from jaxcls.errors import UserError

# TFDS's own patterns: `name[selector]`, each bound `value unit`, parts joined by `+`.
_PART = re.compile(r'^(?P<split>[\w-]+)(\[(?P<selector>[\d\w%:.-]+)\])?$')
_BOUND = re.compile(r'^((?P<value>-?[\d_.]+)(?P<unit>%|shard)?)?$')
_PLUS = re.compile(r'\s*\+\s*')
ALL = 'all'


class Slice(NamedTuple):
  """Examples [start, stop) of base split `split`."""
  split: str
  start: int
  stop: int


class _Part(NamedTuple):
  """One `+`-joined part before it meets the split sizes; bounds in `unit` ('abs', '%',
  'shard'), None for open ends."""
  split: str
  start: Optional[float]
  stop: Optional[float]
  unit: str


def describe(split_sizes: Mapping[str, int]) -> str:
  """`train (60000), test (10000)`: the available splits for an error message."""
  if not split_sizes:
    return 'unknown'
  return ', '.join(f'{name} ({size})' for name, size in split_sizes.items())


def _parse_part(text: str) -> _Part:
  """Raises ValueError with the reason."""
  match = _PART.match(text)
  if not match:
    raise ValueError(f'unrecognized split format {text!r}')
  name, selector = match['split'], match['selector']
  if name == ALL:
    if selector:
      raise ValueError(f'{ALL!r} takes no slice')
    return _Part(ALL, None, None, 'abs')
  if selector is None:
    return _Part(name, None, None, 'abs')
  bounds = [_BOUND.match(b) for b in selector.split(':')]
  if not all(bounds) or not any(b.group(0) for b in bounds) or len(bounds) > 2:
    raise ValueError(f'unrecognized split format {text!r}')
  if len(bounds) == 1:  # `train[3shard]`: one shard
    unit = bounds[0]['unit'] or 'abs'
    if unit != 'shard':
      raise ValueError('a count or percent needs slice syntax [from:to]')
    try:
      start = int(bounds[0]['value'])
    except ValueError:
      raise ValueError(f'the shard of {text!r} must be an integer') from None
    return _Part(name, start, start + 1, unit)
  unit = bounds[0]['unit'] or bounds[1]['unit'] or 'abs'
  number = float if unit == '%' else int
  try:
    start, stop = (None if b['value'] is None else number(b['value']) for b in bounds)
  except ValueError:
    raise ValueError(f'bounds of {text!r} must be {"numbers" if unit == "%" else "integers"}'
                     ) from None
  if unit == '%' and (abs(start or 0) > 100 or abs(stop or 0) > 100):
    raise ValueError('percent bounds must be in [-100, 100]')
  return _Part(name, start, stop, unit)


def _parse(spec: str) -> list[_Part]:
  return [_parse_part(text) for text in _PLUS.split(spec)]


def _percent(bound: float, size: int) -> int:
  """The closest example to `bound`% of `size`; a negative bound that rounds to none is the end
  of the split (TFDS would read it as 0, the start)."""
  examples = int(round(bound * size / 100.0))
  return size if bound < 0 and examples == 0 else examples


def _absolute(part: _Part, size: int) -> Slice:
  """`part` of a base split of `size` examples (one shard). Raises ValueError."""
  start, stop = part.start, part.stop
  if part.unit == '%':
    start = 0 if start is None else _percent(start, size)
    stop = size if stop is None else _percent(stop, size)
  elif part.unit == 'shard':
    shard_lengths = [size]
    start = 0 if start is None else sum(shard_lengths[:start])
    if stop is not None and stop <= 0:
      stop += len(shard_lengths)
    stop = size if stop is None else sum(shard_lengths[:stop])
  else:
    start = 0 if start is None else start
    stop = size if stop is None else stop
  if abs(start) > size or abs(stop) > size:
    raise ValueError(f'slice [{start or ""}:{stop or ""}] incompatible with {size} examples')
  return Slice(part.split, start + size if start < 0 else start,
               stop + size if stop < 0 else stop)


def resolve(spec: str, field: str, split_sizes: Mapping[str, int]) -> list[Slice] | None:
  """The base-split slices that `spec` selects, in order.

  Args:
    spec: a TFDS split string.
    field: the config field it came from, for error messages (`dataset.train_split`).
    split_sizes: base split name -> number of examples. When empty, only the syntax is checked.

  Returns:
    The slices, or None when `split_sizes` is empty.

  Raises:
    UserError: bad syntax, an unknown split, a slice out of range, or no examples selected.
  """
  hint = (f"; available splits: {describe(split_sizes)}; use TFDS split syntax, e.g. 'train', "
          "'train[:90%]', 'train[:30000]+test'")
  if not isinstance(spec, str) or not spec.strip():
    raise UserError(f'{field}: empty split {spec!r}{hint}')
  try:
    parts = _parse(spec)
  except ValueError as e:
    raise UserError(f'{field}: cannot parse split {spec!r} ({e}){hint}') from e
  if not split_sizes:
    return None
  slices = []
  for part in parts:
    names = list(split_sizes) if part.split == ALL else [part.split]
    for name in names:
      if name not in split_sizes:
        raise UserError(f'{field}: bad split {spec!r} (unknown split {name!r}){hint}')
      try:
        slices.append(_absolute(part._replace(split=name), split_sizes[name]))
      except ValueError as e:
        raise UserError(f'{field}: bad split {spec!r} ({e}){hint}') from e
  if num_examples(slices) == 0:
    raise UserError(f'{field}: split {spec!r} selects no examples{hint}')
  return slices


def tfds_spec(spec: str, slices: list[Slice] | None) -> str:
  """The split string to give TFDS for `spec` resolved to `slices`: `spec` itself, or, where
  `resolve` corrected a negative percent bound, the slices as absolute indices."""
  if slices is None or not re.search(r'-[\d_.]+%', spec):
    return spec
  return '+'.join(f'{s.split}[{s.start}:{s.stop}]' for s in slices)


def num_examples(slices: list[Slice]) -> int:
  """How many examples `slices` select (a reversed slice such as `train[50:20]` selects none)."""
  return sum(max(0, s.stop - s.start) for s in slices)
