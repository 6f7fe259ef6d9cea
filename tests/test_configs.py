"""Every config file, and every command its docstring advertises, loads the way main.py loads it
(`config_flags.DEFINE_config_file`, `path:variants`, locked), passes
`config_checks.check_config`, and builds its model and optimizer state with `jax.eval_shape` at
its dataset's input shape."""

import ast
import functools
import pathlib
import re

from absl import flags
import jax
from ml_collections import config_flags
import pytest

from jaxcls import config_checks, models, optim
from jaxcls.errors import UserError
from jaxcls.models import macs

CONFIG_DIR = pathlib.Path(__file__).resolve().parent.parent / 'configs'
INPUT_SHAPES = {'cifar10': (32, 32, 3), 'cifar100': (32, 32, 3), 'fashion_mnist': (28, 28, 1),
                'digits': (32, 32, 1)}
# `configs/<file>.py` or `configs/<file>.py:<variants>` anywhere in a docstring.
COMMAND = re.compile(r'configs/(\w+)\.py(?::([\w.,]+))?')


def _source(path: pathlib.Path) -> ast.Module:
  return ast.parse(path.read_text())


def _get_config_args(path: pathlib.Path) -> int | None:
  """Number of parameters of the file's `get_config`; None for helper modules without one."""
  for node in _source(path).body:
    if isinstance(node, ast.FunctionDef) and node.name == 'get_config':
      return len(node.args.args)
  return None


ALL_FILES = sorted(CONFIG_DIR.glob('*.py'))
CONFIG_FILES = [p for p in ALL_FILES if _get_config_args(p) is not None]
RECIPE_FILES = [p for p in CONFIG_FILES if _get_config_args(p) == 1]  # take variants


def _advertised() -> list[str]:
  """Every `configs/<file>.py[:variants]` that a config file's docstring shows, deduplicated."""
  specs = []
  for path in ALL_FILES:
    for name, variants in COMMAND.findall(ast.get_docstring(_source(path)) or ''):
      spec = f'configs/{name}.py' + (f':{variants}' if variants else '')
      if spec not in specs:
        specs.append(spec)
  return specs


ADVERTISED = _advertised()


def load(spec: str, *overrides: str):
  """The config of `spec` ('configs/x.py:variants') with `overrides` ('--config.a.b=v'), exactly
  as main.py's flag parses a command line."""
  argv = ['main.py', f'--config={CONFIG_DIR.parent / spec}', *overrides]
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'config', flag_values=flag_values,
                                  lock_config=True, sys_argv=argv)
  flag_values(argv)
  return flag_values.config


def _model_overrides(config) -> dict:
  return {k: v for k, v in config.model.items() if k != 'name' and v is not None}


def build(config) -> tuple[int, int]:
  """check_config, then the abstract train state; returns (params, batch_stats) sizes.

  The model is traced by `macs.abstract_variables` (cached per model and shape), i.e. the
  eval-mode `model.init` that `train.create_train_state` runs, so test_macs reuses the traces.
  """
  config_checks.check_config(config)
  shape = INPUT_SHAPES[config.dataset.name]
  model = models.create_model(config.model.name, num_classes=10, **_model_overrides(config))
  variables = macs.abstract_variables(model, (1, *shape))
  tx, _ = optim.create_optimizer(config, steps_per_epoch=100)
  opt_state = jax.eval_shape(tx.init, variables['params'])
  assert jax.tree_util.tree_leaves(opt_state)  # SGD momentum: one trace per parameter
  return macs.count_params(model, (1, *shape))


def test_helpers_and_configs():
  helpers = sorted(p.stem for p in ALL_FILES if p not in CONFIG_FILES)
  assert helpers == ['pytorch_cifar100', 'seed_a', 'seed_b']
  assert len(CONFIG_FILES) >= 25


def test_every_advertised_command_names_an_existing_config():
  for spec in ADVERTISED:
    assert (CONFIG_DIR.parent / spec.split(':')[0]).exists(), spec


@pytest.mark.parametrize('path', CONFIG_FILES, ids=[p.stem for p in CONFIG_FILES])
def test_every_config_advertises_its_own_command(path):
  own = [s for s in ADVERTISED if s.split(':')[0] == f'configs/{path.name}']
  assert own, f'{path.name}: its docstring shows no `configs/{path.name}` command'


@pytest.mark.parametrize('spec', ADVERTISED)
def test_advertised_command_loads_checks_and_builds(spec):
  config = load(spec)
  assert config.is_locked
  params, _ = build(config)
  assert params > 0


@functools.lru_cache(maxsize=None)
def _allowed_variants(path: pathlib.Path) -> list[str]:
  """The variants a recipe file names when it is given an unknown one."""
  with pytest.raises(UserError) as error:
    load(f'configs/{path.name}:no_such_variant')
  message = str(error.value)
  assert '\n' not in message
  assert message.startswith(f"--config configs/{path.name}:no_such_variant: unknown variant "
                            "'no_such_variant'; choose from: ")
  return message.split('choose from: ')[1].split(', ')


@pytest.mark.parametrize('path', RECIPE_FILES, ids=[p.stem for p in RECIPE_FILES])
def test_each_variant_alone_loads_and_checks(path):
  allowed = _allowed_variants(path)
  assert allowed
  for variant in allowed:
    config = load(f'configs/{path.name}:{variant}')
    config_checks.check_config(config)
    models.create_model(config.model.name, **_model_overrides(config))


# --- What the rows must carry (SPEC §1-§7).

def test_seed_a_recipe_defaults():
  config = load('configs/resnet50b.py')
  assert (config.num_epochs, config.batch_size, config.optim.lr) == (150, 1024, 0.5)
  assert (config.schedule.name, config.schedule.warmup_epochs, config.schedule.lr_min) == (
      'cosine', 10.0, 0.001)
  assert config.optim.nesterov and config.optim.momentum == 0.9
  assert (config.optim.weight_decay, config.optim.weight_decay_on) == (2e-4, 'conv_kernels')
  assert (config.augment.crop_padding, config.augment.pad_mode) == (4, 'symmetric')
  assert config.augment.flip == 'random' and config.model.survival_prob is None


@pytest.mark.parametrize('spec,survival_prob', [
    ('resnet50b.py:sd', 0.7), ('resnet101b.py:sd', 0.5), ('resnet152b.py:sd', 0.35),
    ('resnext50_c32.py:sd', 0.5), ('resnext101_c32.py:sd', 0.5), ('senet50.py:sd', 0.7),
    ('senet101.py:sd', 0.5)])
def test_stochastic_depth_final_survival(spec, survival_prob):
  config = load(f'configs/{spec}')
  assert config.model.survival_prob == survival_prob
  assert config.model.drop_path_mode == 'batch'


def test_seed_a_row_tags():
  config = load('configs/resnet50b.py:sd,mish,htd,cutout16')
  assert config.model.activation == 'mish' and config.schedule.name == 'htd'
  assert (config.augment.cutout_size, config.augment.cutout_prob) == (16, 1.0)
  assert not config.augment.cutout_inside
  config = load('configs/resnet50b.py:sd,htd,mixup0.2')
  assert (config.mix.name, config.mix.alpha) == ('mixup', 0.2)
  config = load('configs/resnet50b.py:sd,htd,cutmix')
  assert (config.mix.name, config.mix.alpha, config.mix.cutmix_box) == ('cutmix', 1.0, 'corner')


def test_mobilenetv2_resolution_and_l2():
  config = load('configs/mobilenetv2.py:96px,htd,cutmix')
  assert config.model.upsample == 3
  assert (config.optim.weight_decay, config.optim.weight_decay_on) == (8e-5, 'conv_kernels')
  assert load('configs/mobilenetv2.py').model.upsample == 3
  assert load('configs/mobilenetv2.py:192px').model.upsample == 6
  with pytest.raises(UserError, match=r'^--config configs/mobilenetv2\.py:96px,192px: choose one '
                     r'of 96px, 192px$'):
    load('configs/mobilenetv2.py:96px,192px')


SEED_B = {
    # file: (model, epochs, batch, nesterov, weight decay, schedule, milestones, factor, seed)
    'wrn28_10': ('wrn28_10', 200, 256, True, 5e-4, 'step', (59, 119, 159), 0.2, 40000),
    'densenet_bc100': ('densenet100k12', 300, 128, True, 1e-4, 'step', (149, 224), 0.1, 40000),
    'dpn': ('dpn', 200, 256, False, 5e-4, 'step', (59, 119, 159), 0.2, 40000),
    'shake26_96d': ('shake_shake26_2x96d', 1800, 256, False, 1e-4, 'cosine', (), 0.1, 30000),
    'shake26_64d': ('shake_shake26_2x64d', 1800, 256, False, 1e-4, 'cosine', (), 0.1, 30000),
}


@pytest.mark.parametrize('name', SEED_B)
def test_seed_b_rows(name):
  model, epochs, batch, nesterov, decay, schedule, milestones, factor, seed = SEED_B[name]
  config = load(f'configs/{name}.py')
  assert (config.model.name, config.model.convention) == (model, 'torch')
  assert (config.dataset.name, config.dataset.train_split, config.dataset.eval_split) == (
      'fashion_mnist', 'train[:30000]', 'train[30000:]+test')
  assert (config.num_epochs, config.batch_size, config.seed) == (epochs, batch, seed)
  assert (config.optim.lr, config.optim.momentum, config.optim.nesterov) == (0.1, 0.9, nesterov)
  assert (config.optim.weight_decay, config.optim.weight_decay_on) == (decay, 'all')
  assert (config.schedule.name, config.schedule.warmup_epochs) == (schedule, 0.0)
  if schedule == 'step':
    assert (config.schedule.milestones, config.schedule.factor) == (milestones, factor)
  else:
    assert config.schedule.lr_min == 0.0
  assert config.mix.name == 'none' and config.label_smoothing == 0.0
  # The README's "Random Crop & Flip", normalised with the training split's statistics.
  augment = config.augment
  assert (augment.crop_padding, augment.pad_mode, augment.flip) == (4, 'zero', 'random')
  assert augment.mean is None and augment.std is None
  cutout = 16 if name.startswith('shake') else 0
  assert (augment.cutout_size, augment.cutout_prob, augment.cutout_inside) == (cutout, 1.0, False)
  # What the notebooks ran: raw 0-255 pixels, no augmentation.
  as_run = load(f'configs/{name}.py:as_run').augment
  assert (as_run.mean, as_run.std) == ((0.0,), (1.0,))
  assert (as_run.crop_padding, as_run.flip, as_run.cutout_size) == (0, 'none', 0)


@pytest.mark.parametrize('name', ['inception_v3', 'inception_v4', 'xception'])
def test_pytorch_cifar100_rows(name):
  config = load(f'configs/{name}.py:cifar100')
  assert (config.model.name, config.model.stem, config.dataset.name) == (name, 'cifar', 'cifar100')
  assert (config.num_epochs, config.batch_size, config.optim.lr) == (200, 128, 0.1)
  assert (config.optim.momentum, config.optim.nesterov) == (0.9, False)
  assert (config.optim.weight_decay, config.optim.weight_decay_on) == (5e-4, 'all')
  schedule = config.schedule
  assert (schedule.name, schedule.warmup_epochs, schedule.milestones, schedule.factor) == (
      'step', 1.0, (59, 119, 159), 0.2)
  assert (config.augment.crop_padding, config.augment.pad_mode, config.augment.flip) == (
      4, 'zero', 'random')
  assert config.augment.mean is None and config.mix.name == 'none'
  assert load(f'configs/{name}.py').dataset.name == 'cifar10'


def test_shake26_96d_carries_the_shake_shake_image_model():
  config = load('configs/shake26_96d.py')
  assert (config.model.shake_mode, config.model.shake_level) == ('shake-shake', 'image')
  assert config.model.base_width == 96


def test_model_fields_of_seed_b_configs_are_overridable():
  config = load('configs/wrn28_10.py', '--config.model.widen=1', '--config.model.depth=10')
  assert (config.model.widen, config.model.depth) == (1, 10)
  assert build(config) == (77_562, 480)  # WRN-10-1 on 28x28x1 (the hand count of test_macs)
  config = load('configs/dpn.py', '--config.model.filters=(16, 32, 64)')
  assert config.model.filters == (16, 32, 64)


def test_airbench94_is_the_papers_recipe():
  """Jordan 2024 (arXiv 2404.00498) §3 and its airbench94.py, in torch's SGD form."""
  config = load('configs/airbench94.py')
  assert (config.batch_size, config.num_epochs, config.label_smoothing) == (1024, 9.9, 0.2)
  assert config.loss_reduction == 'sum'
  assert optim.train_steps(config, 48) == 476  # 9.9 epochs of 48 full batches of 1024
  kilostep = 1024 * (1 + 1 / 0.15)  # 7850.7: airbench's lr is per 1024 examples, momentum out
  assert config.optim.lr == pytest.approx(11.5 / kilostep)
  assert (config.optim.momentum, config.optim.nesterov) == (0.85, True)
  # Every group decays by the same step 0.0153 * 1024 / kilostep per update: lr x wd.
  assert config.optim.lr * config.optim.weight_decay == pytest.approx(0.0153 * 1024 / kilostep)
  bn = config.optim.param_groups.bn_bias
  assert bn.lr_mult * bn.wd_mult == pytest.approx(1.0) and bn.lr_mult == 64.0
  assert config.optim.param_groups.whitening_bias.until_epoch == 3.0
  assert tuple(map(tuple, config.schedule.knots)) == ((0.0, 0.2), (0.23, 1.0), (1.0, 0.07))
  assert (config.augment.flip, config.augment.translate) == ('alternating', 2)
  assert (config.ema.mode, config.ema.decay, config.ema.every) == ('lookahead', 0.95, 5)
  assert config.eval.tta == 'flip_translate'
  cpu = load('configs/airbench94.py:cpu')
  assert tuple(cpu.model.widths) == (32, 128, 128) and cpu.batch_size == 128
  assert cpu.optim.lr == config.optim.lr  # per-example hyperparameters carry over
  assert cpu.optim.lr * cpu.optim.weight_decay == pytest.approx(0.0153 * 128 / kilostep)


def test_pyramidnet_rows():
  config = load('configs/pyramidnet.py')
  assert (config.model.name, config.model.depth, config.model.alpha) == (
      'pyramidnet110_a48', 110, 48)
  assert not config.model.shakedrop and config.model.convention == 'torch'
  assert (config.num_epochs, config.batch_size, config.optim.lr) == (300, 128, 0.5)
  assert config.optim.nesterov and (config.optim.weight_decay, config.optim.weight_decay_on) == (
      1e-4, 'all')
  assert (config.schedule.name, config.schedule.milestones, config.schedule.factor) == (
      'step', (149, 224), 0.1)
  assert (config.augment.crop_padding, config.augment.pad_mode, config.augment.flip) == (
      4, 'zero', 'random')
  config = load('configs/pyramidnet.py:272_a200,shakedrop,cifar100')
  assert (config.model.name, config.model.depth, config.model.bottleneck) == (
      'pyramidnet272_a200_bn', 272, True)
  assert config.model.shakedrop and config.model.shakedrop_final_prob == 0.5
  assert config.dataset.name == 'cifar100'
  with pytest.raises(UserError, match=r'^--config configs/pyramidnet\.py:110_a48,272_a200: '
                     r'choose one model of '):
    load('configs/pyramidnet.py:110_a48,272_a200')
  # A reduced net from the command line, as docs/ZOO.md's short run uses.
  reduced = load('configs/pyramidnet.py:shakedrop', '--config.model.depth=20',
                 '--config.model.alpha=12')
  assert build(reduced)[0] > 0
