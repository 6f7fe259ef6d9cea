"""Schedules at known steps against their formulas; the optimizer against hand-computed SGD."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from jaxcls import optim
from jaxcls.errors import UserError

SPE = 10  # steps per epoch


def _config(**schedule):
  config = default.get_config()
  config.num_epochs = 20
  config.optim.lr = 0.4
  for k, v in schedule.items():
    config.schedule[k] = v
  return config


def test_constant():
  s = optim.create_schedule(_config(name='constant'), SPE)
  assert [float(s(t)) for t in (0, 57, 199)] == pytest.approx([0.4, 0.4, 0.4])


def test_step_drops_at_epoch_starts():
  s = optim.create_schedule(_config(name='step', milestones=(5, 15), factor=0.1), SPE)
  assert float(s(49)) == pytest.approx(0.4)
  assert float(s(50)) == pytest.approx(0.04)
  assert float(s(149)) == pytest.approx(0.04)
  assert float(s(150)) == pytest.approx(0.004)
  assert float(s(199)) == pytest.approx(0.004)


@pytest.mark.parametrize('t', [0, 1, 37, 100, 163, 199, 200])
def test_cosine_formula(t):
  s = optim.create_schedule(_config(name='cosine', lr_min=0.01), SPE)
  want = 0.01 + (0.4 - 0.01) / 2 * (1 + math.cos(math.pi * t / 200))
  assert float(s(t)) == pytest.approx(want, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize('lower,upper', [(-6.0, 3.0), (-4.0, 4.0)])
@pytest.mark.parametrize('t', [0, 50, 123, 200])
def test_htd_formula(lower, upper, t):
  s = optim.create_schedule(
      _config(name='htd', lr_min=0.001, htd_lower=lower, htd_upper=upper), SPE)
  want = 0.001 + (0.4 - 0.001) / 2 * (1 - math.tanh(lower + (upper - lower) * t / 200))
  assert float(s(t)) == pytest.approx(want, rel=1e-5, abs=1e-7)


def test_warmup_then_cosine():
  s = optim.create_schedule(_config(name='cosine', warmup_epochs=2.0), SPE)
  # Linear from 0 to lr over 20 steps, then cosine over the remaining 180.
  assert float(s(0)) == pytest.approx(0.0)
  assert float(s(10)) == pytest.approx(0.2)
  assert float(s(20)) == pytest.approx(0.4)
  assert float(s(110)) == pytest.approx(0.2, rel=1e-5)
  assert float(s(200)) == pytest.approx(0.0, abs=1e-7)


def test_step_milestones_count_from_the_start_with_warmup():
  s = optim.create_schedule(_config(name='step', warmup_epochs=1.0, milestones=(5,)), SPE)
  assert float(s(49)) == pytest.approx(0.4)
  assert float(s(50)) == pytest.approx(0.4 * 0.2)


def test_schedule_bad_inputs():
  with pytest.raises(UserError, match='schedule.name'):
    optim.create_schedule(_config(name='linear'), SPE)
  with pytest.raises(UserError, match='schedule.warmup_epochs'):
    optim.create_schedule(_config(warmup_epochs=20.0), SPE)


@pytest.mark.parametrize('nesterov', [True, False])
def test_sgd_matches_pytorch_update_rule(nesterov):
  """Coupled decay then momentum, as torch.optim.SGD: two steps by hand."""
  config = _config(name='constant')
  config.optim.weight_decay, config.optim.momentum, config.optim.nesterov = 0.1, 0.9, nesterov
  config.optim.weight_decay_on = 'all'
  tx, _ = optim.create_optimizer(config, SPE)
  w = {'w': jnp.array([1.0, -2.0])}
  grads = [np.array([0.5, 0.25]), np.array([-1.0, 2.0])]
  state = tx.init(w)
  ref_w, buf = np.array([1.0, -2.0]), np.zeros(2)
  for g in grads:
    updates, state = tx.update({'w': jnp.asarray(g)}, state, w)
    w = jax.tree.map(lambda p, u: p + u, w, updates)
    d = g + 0.1 * ref_w
    buf = 0.9 * buf + d
    ref_w = ref_w - 0.4 * (d + 0.9 * buf if nesterov else buf)
  np.testing.assert_allclose(np.asarray(w['w']), ref_w, rtol=1e-6)


def test_create_optimizer_rejects_unknown_weight_decay_target():
  config = _config()
  config.optim.weight_decay_on = 'bn'
  with pytest.raises(UserError, match='optim.weight_decay_on'):
    optim.create_optimizer(config, SPE)


# --- Fractional epochs and the piecewise-linear schedule ---------------------------------------

@pytest.mark.parametrize('epochs,spe,steps', [(9.9, 48, 476), (0.7, 10, 7), (2, 8, 16),
                                              (0.05, 10, 1)])
def test_train_steps_round_fractional_epochs_up(epochs, spe, steps):
  config = default.get_config()
  config.num_epochs = epochs
  assert optim.train_steps(config, spe) == steps


def _airbench_schedule():
  config = _config(name='piecewise_linear', knots=((0, 0.2), (0.23, 1.0), (1, 0.07)))
  config.num_epochs = 9.9
  return optim.create_schedule(config, 48)  # 476 steps, the peak at int(0.23 * 476) = 109


@pytest.mark.parametrize('t', [0, 1, 54, 108, 109, 110, 300, 475, 476, 600])
def test_piecewise_linear_is_airbench94s_schedule(t):
  """airbench94's get_lr(step) times the peak lr, with its warm-up of int(0.23 * 476) steps."""
  total, warmup = 476, 109
  if t < warmup:
    want = 0.2 * (1 - t / warmup) + 1.0 * t / warmup
  else:
    frac = min(t, total) - warmup
    want = 1.0 * (1 - frac / (total - warmup)) + 0.07 * frac / (total - warmup)
  assert float(_airbench_schedule()(t)) == pytest.approx(0.4 * want, rel=1e-6)


@pytest.mark.parametrize('knots', [((0.5, 1.0), (0.2, 0.0)), ((0, 1), (1.5, 0)), ((0, -1),),
                                   (0.3,), ((0, 1, 2),)])
def test_piecewise_linear_rejects_bad_knots(knots):
  with pytest.raises(UserError, match='schedule.knots'):
    optim.create_schedule(_config(name='piecewise_linear', knots=knots), SPE)


def test_piecewise_linear_takes_no_warmup():
  with pytest.raises(UserError, match='schedule.warmup_epochs'):
    optim.create_schedule(_config(name='piecewise_linear', warmup_epochs=1.0), SPE)


# --- Parameter groups ------------------------------------------------------------------------

PARAMS = {'Conv_0': {'kernel': jnp.ones((3, 3, 1, 2)), 'bias': jnp.ones(2)},
          'BatchNorm_0': {'scale': jnp.ones(2), 'bias': jnp.ones(2)},
          'Block_0': {'norm': {'bias': jnp.ones(2)}, 'Dense_0': {'kernel': jnp.ones((2, 3))}}}


def _groups(**groups):
  config = default.get_config()
  for name, group in groups.items():
    config.optim.param_groups[name] = group
  return config.optim.param_groups


def _labels(**groups) -> dict:
  labels = optim.param_group_labels(PARAMS, _groups(**groups))
  return {jax.tree_util.keystr(p, simple=True, separator='/'): v
          for p, v in jax.tree_util.tree_flatten_with_path(labels)[0]}


def test_group_kinds_select_their_leaves():
  assert _labels(bn=dict(kind='bn_bias'), conv=dict(kind='conv_kernel')) == {
      'BatchNorm_0/bias': 'bn', 'BatchNorm_0/scale': 'default', 'Block_0/Dense_0/kernel':
      'default', 'Block_0/norm/bias': 'bn', 'Conv_0/bias': 'default', 'Conv_0/kernel': 'conv'}
  assert _labels(scale=dict(kind='bn_scale'), b=dict(kind='bias', path='^Conv'),
                 k=dict(kind='kernel', path='Block')) == {
      'BatchNorm_0/bias': 'default', 'BatchNorm_0/scale': 'scale', 'Block_0/Dense_0/kernel': 'k',
      'Block_0/norm/bias': 'default', 'Conv_0/bias': 'b', 'Conv_0/kernel': 'default'}


@pytest.mark.parametrize('groups,match', [
    (dict(a=dict(kind='bias'), b=dict(path='Conv_0')), "Conv_0/bias is selected by both 'a'"),
    (dict(a=dict(path='Nothing')), 'param_groups.a: selects no parameter'),
])
def test_group_selection_errors(groups, match):
  with pytest.raises(UserError, match=match):
    optim.param_group_labels(PARAMS, _groups(**groups))


@pytest.mark.parametrize('group,match', [
    (dict(kind='norm'), 'param_groups.g.kind: unknown kind'),
    (dict(lr_mult=2.0), 'param_groups.g: give a path'),
    (dict(path='(', lr_mult=2.0), 'param_groups.g.path: not a regular expression'),
    (dict(kind='bias', lr_mult=-1.0), 'param_groups.g.lr_mult'),
    (dict(kind='bias', until_epoch=0.0), 'param_groups.g.until_epoch'),
    (dict(kind='bias', lr=2.0), "param_groups.g: unknown field 'lr'"),
])
def test_group_field_errors(group, match):
  config = _config(name='constant')
  config.optim.param_groups.g = group
  with pytest.raises(UserError, match=match):
    optim.create_optimizer(config, SPE)


def test_groups_scale_lr_and_coupled_decay_and_stop_after_until_epoch():
  """Nesterov SGD with torch-style groups, by hand: the BN biases at 64x the lr and 1/64 the
  decay (so the same decay step), the conv bias trained for one epoch only (SPE steps)."""
  config = _config(name='constant')
  config.optim.weight_decay, config.optim.momentum = 0.5, 0.85
  config.optim.param_groups.bn = dict(kind='bn_bias', lr_mult=64.0, wd_mult=1 / 64)
  config.optim.param_groups.first = dict(path='Conv_0/bias', until_epoch=1.0)
  tx, _ = optim.create_optimizer(config, SPE)
  params, state = PARAMS, tx.init(PARAMS)
  lr_wd = {'Conv_0/kernel': (0.4, 0.5), 'BatchNorm_0/scale': (0.4, 0.5),
           'BatchNorm_0/bias': (0.4 * 64, 0.5 / 64), 'Block_0/norm/bias': (0.4 * 64, 0.5 / 64),
           'Block_0/Dense_0/kernel': (0.4, 0.5), 'Conv_0/bias': (0.4, 0.5)}
  flat = lambda tree: {jax.tree_util.keystr(p, simple=True, separator='/'): np.asarray(v)
                       for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}
  ref, buf = flat(PARAMS), {k: 0.0 for k in lr_wd}
  for t in range(SPE + 2):
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.1 * (t + 1)), params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    for k, (lr, wd) in lr_wd.items():
      d = 0.1 * (t + 1) + wd * ref[k]
      buf[k] = 0.85 * buf[k] + d
      if k != 'Conv_0/bias' or t < SPE:
        ref[k] = ref[k] - lr * (d + 0.85 * buf[k])
    got = flat(params)
    for k in lr_wd:
      np.testing.assert_allclose(got[k], ref[k], rtol=2e-6, err_msg=f'{k} at step {t}')


def test_no_groups_keeps_the_single_chain():
  """Without groups the optimizer state is the plain chain's (old checkpoints restore)."""
  config = _config(name='constant')
  plain = optim.create_optimizer(config, SPE)[0].init(PARAMS)
  config.optim.param_groups.bn = dict(kind='bn_bias', lr_mult=2.0)
  grouped = optim.create_optimizer(config, SPE)[0].init(PARAMS)
  assert not isinstance(plain, optax.PartitionState) and isinstance(grouped, optax.PartitionState)
