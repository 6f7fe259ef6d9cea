"""TFDS split syntax (`train[:30000]`, `train[30000:]+test`, `test[-10%:]`) for every source.

Parsing and slice arithmetic are TFDS's own (`tfds.core.ReadInstruction.from_spec(...)
.to_absolute(split_infos)`), so a split string means the same thing here as in `tfds.load`:
percentages round to the closest example, negative bounds count from the end, `all` is every
split. Offline sources describe each base split as one shard, so `train[1shard:]` is empty there.

One correction: TFDS loses the sign of a negative percent bound that rounds to zero examples
(`train[-1%:]` of 30 examples is the last 0.3 of an example, so none; TFDS reads the bound as
0 and selects all 30, and `train[:-1%]` none instead of all). `resolve` puts such a bound at the
end of the split, and `tfds_spec` hands TFDS the corrected slices as absolute indices.
Importing `tensorflow_datasets` does not import TensorFlow; it is still deferred to the first
call, as it costs about 0.3 s.
"""

from collections.abc import Mapping
import re
from typing import NamedTuple

from jaxcls.errors import UserError

_TFDS_DOC_LINK = re.compile(r'\s*See format at:? \S+')


class Slice(NamedTuple):
  """Examples [start, stop) of base split `split`."""
  split: str
  start: int
  stop: int


def describe(split_sizes: Mapping[str, int]) -> str:
  """`train (60000), test (10000)`: the available splits for an error message."""
  if not split_sizes:
    return 'unknown'
  return ', '.join(f'{name} ({size})' for name, size in split_sizes.items())


def _reason(error: Exception) -> str:
  # TFDS wraps parse errors as 'Error parsing split ... \n<reason>'; the last line is the reason.
  lines = [line for line in str(error).splitlines() if line.strip()]
  reason = _TFDS_DOC_LINK.sub('', lines[-1] if lines else type(error).__name__)
  return reason.strip().rstrip('.')


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
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  hint = (f"; available splits: {describe(split_sizes)}; use TFDS split syntax, e.g. 'train', "
          "'train[:90%]', 'train[:30000]+test'")
  if not isinstance(spec, str) or not spec.strip():
    raise UserError(f'{field}: empty split {spec!r}{hint}')
  try:
    instruction = tfds.core.ReadInstruction.from_spec(spec)
  except (ValueError, NotImplementedError) as e:
    raise UserError(f'{field}: cannot parse split {spec!r} ({_reason(e)}){hint}') from e
  if not split_sizes:
    return None
  split_infos = {
      name: tfds.core.SplitInfo(name=name, shard_lengths=[size], num_bytes=0)
      for name, size in split_sizes.items()
  }
  slices = []
  for part in _parts(instruction):
    try:
      absolute = part.to_absolute(split_infos)
    except ValueError as e:
      raise UserError(f'{field}: bad split {spec!r} ({_reason(e)}){hint}') from e
    for a in absolute:
      size = split_sizes[a.splitname]
      start, stop = a.from_ or 0, size if a.to is None else a.to
      if _negative_percent_rounding_to_zero(part, 'from_', size):
        start = size
      if _negative_percent_rounding_to_zero(part, 'to', size):
        stop = size
      slices.append(Slice(a.splitname, start, stop))
  if num_examples(slices) == 0:
    raise UserError(f'{field}: split {spec!r} selects no examples{hint}')
  return slices


def _parts(instruction) -> list:
  """The instructions that `a+b+c` adds, left to right (an `all` stays one part)."""
  if hasattr(instruction, 'left') and hasattr(instruction, 'right'):  # TFDS's _SplitAdd
    return _parts(instruction.left) + _parts(instruction.right)
  return [instruction]


def _negative_percent_rounding_to_zero(part, bound: str, size: int) -> bool:
  """Whether `part`'s bound is a negative percentage that TFDS rounds to 0 examples."""
  value = getattr(part, bound, None)
  return (getattr(part, 'unit', None) == '%' and value is not None and value < 0
          and round(value * size / 100) == 0)


def tfds_spec(spec: str, slices: list[Slice] | None) -> str:
  """The split string to give TFDS for `spec` resolved to `slices`: `spec` itself, or, where
  `resolve` corrected a negative percent bound, the slices as absolute indices."""
  if slices is None or not re.search(r'-[\d_.]+%', spec):
    return spec
  return '+'.join(f'{s.split}[{s.start}:{s.stop}]' for s in slices)


def num_examples(slices: list[Slice]) -> int:
  """How many examples `slices` select (a reversed slice such as `train[50:20]` selects none)."""
  return sum(max(0, s.stop - s.start) for s in slices)
