"""config_checks: every numeric field's range, relations between fields, `~` and --workdir."""

import math
import os

import ml_collections
import pytest

from configs import default
from jaxcls import config_checks
from jaxcls.config_checks import FIELDS, Number
from jaxcls.errors import UserError
from tests.conftest import tiny_config


def _leaves(config: ml_collections.ConfigDict, prefix: str = ''):
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield from _leaves(value, f'{prefix}{key}.')
    else:
      yield f'{prefix}{key}', value


def _numeric_fields() -> set[str]:
  """Fields of default.py that hold a number, a bool or a tuple of numbers, or are placeholders
  of such a type, outside `model` (the registry's)."""
  config = default.get_config()
  fields = set()
  for field, value in _leaves(config):
    if field.startswith('model.'):
      continue
    *parents, leaf = field.split('.')
    parent = config
    for part in parents:
      parent = parent[part]
    field_type = parent.get_type(leaf)
    if field_type in (int, float, bool) or (
        isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value)) or (
            field_type is tuple and leaf in ('mean', 'std')):
      fields.add(field)
  return fields


def test_every_numeric_field_of_default_py_has_a_range():
  assert _numeric_fields() == set(FIELDS)


def test_the_defaults_pass():
  config_checks.check_fields(default.get_config())
  config_checks.check_config(default.get_config())


def _bad_values(number: Number) -> list:
  """Values just outside `number`'s range, of every kind it must refuse."""
  if number.kind is bool:
    return [1, 'yes']
  bad = [math.nan, math.inf, -math.inf, 'abc', True]
  if number.low > -math.inf:
    bad.append(number.low if number.low_open else number.low - 1)
  if number.high < math.inf:
    bad.append(number.high if number.high_open else number.high + 1)
  if number.kind is int:
    bad += [1.5, 2**64]
  if number.each:
    bad = [(v,) for v in bad] + [1.0]  # a bare number where a tuple belongs
  return bad


@pytest.mark.parametrize('field', sorted(FIELDS))
def test_every_field_refuses_values_outside_its_range(field):
  number = FIELDS[field]
  for value in _bad_values(number):
    with pytest.raises(UserError, match=rf'^{field}: must be .*got '):
      number.check(field, value)


@pytest.mark.parametrize('field,value,message', [
    ('seed', 99999999999999999999, r'^seed: must be an integer from 0 to 4294967295 '
                                   r'\(JAX random keys keep 32 bits\), got 99999999999999999999$'),
    ('seed', -1, r'^seed: must be an integer from 0 to 4294967295'),
    ('schedule.factor', -0.2, r'^schedule.factor: must be a finite number > 0 \(lr is '
                              r'multiplied by it at each milestone\), got -0.2$'),
    ('schedule.factor', math.nan, r'^schedule.factor: must be a finite number > 0 .*got nan$'),
    ('schedule.lr_min', -1.0, r'^schedule.lr_min: must be a finite number >= 0, got -1.0$'),
    ('schedule.lr_min', 0.5, r'^schedule.lr_min: 0.5 is above optim.lr 0.2; the cosine schedule '
                             r'decays from optim.lr down to lr_min, so set lr_min <= lr$'),
    ('schedule.milestones', (60, 30), r'^schedule.milestones: must increase, got \(60, 30\)'),
    ('schedule.milestones', (-1, 30), r'^schedule.milestones: must be a tuple, each a finite '
                                      r'number >= 0'),
    ('batch_size', 2**40, r'^batch_size: must be a positive integer \(at most 2147483647\)'),
    ('num_epochs', 0, r'^num_epochs: must be a positive integer, got 0$'),
    ('optim.weight_decay', math.inf, r'^optim.weight_decay: must be a finite number >= 0'),
    ('optim.momentum', -0.1, r'^optim.momentum: must be in \[0, 1\) \(0 turns momentum off\)'),
    ('mix.prob', 1.5, r'^mix.prob: must be in \[0, 1\], got 1.5$'),
    ('augment.mean', (125.0, math.nan, 0.0), r'^augment.mean: must be a tuple, each in \[0, 255\]'),
    ('augment.std', (0.0,), r'^augment.std: must be a tuple, each in \(0, 255\]'),
    ('dataset.num_classes', 0, r'^dataset.num_classes: must be a positive integer, got 0$'),
    ('progress_every_secs', -5.0, r'^progress_every_secs: must be a finite number > 0'),
    ('eval_every_epochs', -1, r'^eval_every_epochs: must be a non-negative integer \(0: only at '
                              r'the end\), got -1$'),
    ('mix.cutmix_box', 'middle', r"^mix.cutmix_box: unknown box 'middle'; choose one of: "
                                 r'center, corner$'),
    ('dataset.source', 'web', r"^dataset.source: unknown source 'web'; choose one of: tfds, "),
    ('model.base_width', 0, r'^model.base_width: must be an integer from 1 to 2147483647, got 0$'),
])
def test_check_config_names_the_field_and_the_range(field, value, message):
  with pytest.raises(UserError, match=message):
    config_checks.check_config(tiny_config(**{field: value}))


def test_htd_bounds_must_be_ordered():
  config = tiny_config(**{'schedule.name': 'htd', 'schedule.htd_lower': 3.0})
  with pytest.raises(UserError, match=r'^schedule.htd_lower: 3.0 must be below '
                                      r'schedule.htd_upper 3.0'):
    config_checks.check_config(config)


def test_lr_min_above_lr_is_fine_for_schedules_that_do_not_decay_to_it():
  config_checks.check_config(tiny_config(**{'schedule.name': 'step', 'schedule.lr_min': 0.5}))


def test_a_hand_built_config_may_lack_optional_fields():
  config = tiny_config()
  del config.dataset['num_classes']
  config_checks.check_fields(config)


def test_expand_user_paths_expands_every_path_field(monkeypatch):
  monkeypatch.setenv('HOME', '/home/someone')
  config = tiny_config(**{'dataset.path': '~/data', 'dataset.data_dir': '~/tfds',
                          'dataset.cache_dir': '~/cache', 'init_from': '~/runs/a'})
  config.lock()
  config_checks.expand_user_paths(config)
  assert [config.dataset.path, config.dataset.data_dir, config.dataset.cache_dir,
          config.init_from] == ['/home/someone/data', '/home/someone/tfds',
                                '/home/someone/cache', '/home/someone/runs/a']
  assert set(config_checks.PATH_FIELDS) == {'dataset.path', 'dataset.data_dir',
                                            'dataset.cache_dir', 'init_from'}


def test_paths_without_a_tilde_are_kept():
  config = tiny_config(**{'dataset.path': 'data/~x', 'init_from': None})
  config_checks.expand_user_paths(config)
  assert config.dataset.path == 'data/~x' and config.init_from is None


@pytest.mark.parametrize('workdir', ['', '  ', None])
def test_an_empty_workdir_is_refused(workdir):
  with pytest.raises(UserError, match=r'^--workdir: empty .*; give a directory, or leave the '
                                      r'flag out for the default runs/<config name>$'):
    config_checks.check_workdir(workdir)


def test_workdir_tilde_is_expanded(monkeypatch):
  monkeypatch.setenv('HOME', '/home/someone')
  assert config_checks.check_workdir('~/runs/x') == '/home/someone/runs/x'
  assert config_checks.check_workdir('runs/x') == 'runs/x'
  assert os.path.isabs(config_checks.check_workdir('~'))
