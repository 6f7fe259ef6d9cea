"""jaxcls.averaging: the EMA and airbench94's lookahead against a step-by-step reference."""

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxcls import averaging
from jaxcls.errors import UserError


class State(flax.struct.PyTreeNode):
  step: jax.Array
  params: dict
  batch_stats: dict
  ema: dict


def _config(decay, mode, every):
  return ml_collections.ConfigDict(dict(decay=decay, mode=mode, every=every))


def _run(config, num_steps):
  """Steps of "the optimizer adds t to the weights", then the update; the weights and EMA after
  each step."""
  params, stats = {'w': jnp.array([1.0, -2.0])}, {'mean': jnp.array([0.5])}
  state = State(step=jnp.int32(0), params=params, batch_stats=stats,
                ema=averaging.start(config, params, stats))
  update = jax.jit(averaging.make_update(config, num_steps))
  history = []
  for t in range(1, num_steps + 1):
    moved = jax.tree.map(lambda x: x + t, (state.params, state.batch_stats))
    state = update(state.replace(step=jnp.int32(t), params=moved[0], batch_stats=moved[1]))
    history.append((float(state.params['w'][0]), float(state.batch_stats['mean'][0]),
                    float(state.ema['params']['w'][0]), float(state.ema['batch_stats']['mean'][0])))
  return np.array(history)


@pytest.mark.parametrize('t,want', [(5, 0.95**5 * (5 / 476)**3), (240, 0.95**5 * (240 / 476)**3),
                                    (475, 0.95**5 * (475 / 476)**3), (476, 0.95**5)])
def test_lookahead_alpha_is_airbench94s(t, want):
  assert float(averaging.lookahead_alpha(0.95, 5, jnp.int32(t), 476)) == pytest.approx(want,
                                                                                       rel=1e-6)


def test_lookahead_matches_airbench94s_loop():
  """airbench94: every 5 steps ema.lerp_(w, 1 - alpha_t); w = ema; after the last step (T = 17,
  not a multiple of 5) w = ema, dropping steps 16 and 17; BN statistics alike."""
  T = 17
  got = _run(_config(0.95, 'lookahead', 5), T)
  w, m = 1.0, 0.5
  ema_w, ema_m = w, m
  for t in range(1, T + 1):
    w, m = w + t, m + t
    if t % 5 == 0:
      alpha = 0.95**5 * (t / T)**3
      ema_w, ema_m = ema_w + (1 - alpha) * (w - ema_w), ema_m + (1 - alpha) * (m - ema_m)
      w, m = ema_w, ema_m
    if t == T:
      w, m = ema_w, ema_m
    np.testing.assert_allclose(got[t - 1], [w, m, ema_w, ema_m], rtol=1e-6, err_msg=f'step {t}')
  assert got[-1, 0] == got[14, 0]  # the last two steps were dropped


def test_ema_averages_every_k_steps_and_leaves_the_weights_alone():
  got = _run(_config(0.9, 'ema', 2), 6)
  w = 1.0 + np.cumsum(np.arange(1, 7))
  m = 0.5 + np.cumsum(np.arange(1, 7))
  ema_w, ema_m = 1.0, 0.5
  for t in range(1, 7):
    if t % 2 == 0:
      ema_w = 0.81 * ema_w + 0.19 * w[t - 1]
      ema_m = 0.81 * ema_m + 0.19 * m[t - 1]
    np.testing.assert_allclose(got[t - 1], [w[t - 1], m[t - 1], ema_w, ema_m], rtol=1e-6)


def test_off_keeps_no_average():
  config = _config(0.0, 'ema', 1)
  assert averaging.start(config, {'w': jnp.ones(2)}, {}) == {}
  assert averaging.make_update(config, 10) is None


@pytest.mark.parametrize('fields,match', [
    (dict(decay=1.0), 'ema.decay'), (dict(decay=-0.1), 'ema.decay'),
    (dict(mode='swa'), 'ema.mode: unknown mode'), (dict(every=0), 'ema.every'),
])
def test_bad_config(fields, match):
  config = _config(0.9, 'ema', 1)
  config.update(fields)
  with pytest.raises(UserError, match=match):
    averaging.check(config)
