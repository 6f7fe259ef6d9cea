"""Shake-Shake (SPEC §6.4, §9): forward uses alpha, the gradient uses an independent beta, eval is
the deterministic mean; the paper's even/keep modes and batch level."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcls.errors import UserError
from jaxcls.models import create_model, layers
from jaxcls.models.shake_shake import ShakeCombine


def test_shake_primitive_scales_forward_and_backward_differently():
  x = jnp.array([[1.0, -2.0], [3.0, 4.0]])
  forward_scale = jnp.array([[0.25], [0.5]])
  backward_scale = jnp.array([[0.75], [0.125]])
  np.testing.assert_array_equal(layers.shake(x, forward_scale, backward_scale),
                                [[0.25, -0.5], [1.5, 2.0]])
  w = jnp.array([[1.0, 2.0], [3.0, 5.0]])
  grads = jax.grad(lambda x, f, b: jnp.sum(w * layers.shake(x, f, b)), argnums=(0, 1, 2))(
      x, forward_scale, backward_scale)
  # d/dx sum(w * shake(x)) = w * backward_scale; the scales themselves get no gradient.
  np.testing.assert_array_equal(grads[0], [[0.75, 1.5], [0.375, 0.625]])
  np.testing.assert_array_equal(grads[1], 0.0)
  np.testing.assert_array_equal(grads[2], 0.0)


def _combine(mode='shake-shake', level='image', train=True, seed=0, batch=16):
  """Output and gradients of ShakeCombine on b1 = 1, b2 = 0, so the output is alpha itself,
  d out / d b1 is beta and d out / d b2 is 1 - beta (per element)."""
  b1 = jnp.ones((batch, 2, 2, 3))
  b2 = jnp.zeros((batch, 2, 2, 3))
  module = ShakeCombine(mode, level)
  rngs = {'shake': jax.random.key(seed)}

  def f(b1, b2):
    return module.apply({}, b1, b2, train, rngs=rngs)

  out = f(b1, b2)
  g1, g2 = jax.grad(lambda b1, b2: jnp.sum(f(b1, b2)), argnums=(0, 1))(b1, b2)
  return np.asarray(out), np.asarray(g1), np.asarray(g2)


def _per_image(values):
  flat = values.reshape(values.shape[0], -1)
  assert np.all(flat == flat[:, :1])  # one coefficient per image, over H, W and C
  return flat[:, 0]


def test_shake_shake_image_forward_alpha_backward_independent_beta():
  out, g1, g2 = _combine('shake-shake', 'image')
  alpha, beta = _per_image(out), _per_image(g1)
  np.testing.assert_allclose(_per_image(g2), 1 - beta, rtol=1e-6)
  assert np.all((alpha > 0) & (alpha < 1)) and np.all((beta > 0) & (beta < 1))
  assert len(np.unique(alpha)) == 16 and len(np.unique(beta)) == 16  # per image
  assert not np.allclose(alpha, beta)  # independent draws
  assert abs(np.corrcoef(alpha, beta)[0, 1]) < 0.8
  # The stream decides the draws: another key, other coefficients; the same key, the same.
  assert not np.allclose(_combine(seed=1)[0], out)
  np.testing.assert_array_equal(_combine(seed=0)[0], out)


def test_shake_shake_mixes_real_branches_with_alpha():
  b1 = jax.random.normal(jax.random.key(1), (4, 3, 3, 2))
  b2 = jax.random.normal(jax.random.key(2), (4, 3, 3, 2))
  module = ShakeCombine()
  rngs = {'shake': jax.random.key(3)}
  alpha = _per_image(np.asarray(module.apply({}, jnp.ones_like(b1), jnp.zeros_like(b2), True,
                                             rngs=rngs)))
  out = module.apply({}, b1, b2, True, rngs=rngs)
  a = alpha[:, None, None, None]
  np.testing.assert_allclose(out, a * b1 + (1 - a) * b2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('mode', ['shake-shake', 'shake-keep', 'shake-even', 'even-shake',
                                  'even-even'])
def test_eval_is_the_deterministic_mean(mode):
  out, g1, g2 = _combine(mode, train=False)
  np.testing.assert_array_equal(out, 0.5)
  np.testing.assert_array_equal(g1, 0.5)
  np.testing.assert_array_equal(g2, 0.5)
  # No 'shake' rng is needed at inference.
  b = jnp.ones((2, 1, 1, 1))
  np.testing.assert_array_equal(ShakeCombine(mode).apply({}, b, 3 * b, False), 2.0)


def test_shake_keep_uses_alpha_backward():
  out, g1, _ = _combine('shake-keep')
  np.testing.assert_array_equal(_per_image(g1), _per_image(out))
  assert len(np.unique(_per_image(out))) == 16


def test_shake_even_and_even_shake():
  out, g1, _ = _combine('shake-even')
  assert len(np.unique(_per_image(out))) == 16
  np.testing.assert_array_equal(g1, 0.5)
  out, g1, _ = _combine('even-shake')
  np.testing.assert_array_equal(out, 0.5)
  assert len(np.unique(_per_image(g1))) == 16


def test_batch_level_draws_one_coefficient_per_batch():
  out, g1, _ = _combine('shake-shake', 'batch')
  assert len(np.unique(out)) == 1 and len(np.unique(g1)) == 1
  assert out.flat[0] != g1.flat[0]


def test_bad_shake_mode_is_a_user_error():
  with pytest.raises(UserError, match=r"^model\.shake_mode: unknown value 'shake'; choose one "
                     r"of: shake-shake, shake-keep, shake-even, even-shake, even-even$"):
    create_model('shake_shake26_2x64d', shake_mode='shake')
  with pytest.raises(UserError, match=r"^model\.shake_level: .*image, batch$"):
    create_model('shake_shake26_2x64d', shake_level='pixel')


def test_model_trains_with_the_shake_stream_and_evaluates_deterministically():
  model = create_model('shake_shake26_2x64d', depth=8, base_width=2)

  def run(x):
    variables = model.init(jax.random.key(1, impl='rbg'), x, train=False)

    def train(seed):
      return model.apply(variables, x, train=True, mutable=['batch_stats'],
                         rngs={'shake': jax.random.key(seed, impl='rbg')})[0]

    return train(0), train(1), model.apply(variables, x, train=False)

  x = jax.random.normal(jax.random.key(0), (3, 8, 8, 1))
  # Optimisation level 0 halves the CPU compile time; the numbers do not depend on it here.
  compiled = jax.jit(run).lower(x).compile({'xla_backend_optimization_level': 0})
  train0, train1, evaluated = compiled(x)
  assert not np.allclose(train0, train1)  # the 'shake' stream drives training
  # Evaluation needs no 'shake' rng (none is passed to it) and repeats exactly.
  np.testing.assert_array_equal(evaluated, compiled(x)[2])
