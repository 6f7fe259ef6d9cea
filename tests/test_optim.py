"""Schedules at known steps against their formulas; the optimizer against hand-computed SGD."""

import math

import jax
import jax.numpy as jnp
import numpy as np
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
