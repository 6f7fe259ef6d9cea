"""PyramidNet (SPEC §11) and ShakeDrop (SPEC §9): exact counts against imgclsmob, the unit's
layout, and the ShakeDrop coefficients forward, backward and at inference."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcls.errors import UserError
from jaxcls.models import count_macs, count_params, create_model, layers, pyramidnet

CIFAR = (1, 32, 32, 3)


def _pyramidnet_by_hand(depth, alpha, bottleneck, num_classes=10, size=32):
  """(params, batch_stats, MACs) of PyramidNet-depth (alpha) on size x size x 3, from the
  paper's layout (see jaxcls/models/pyramidnet.py) and its additive width rule."""
  per_unit = 9 if bottleneck else 6
  n = (depth - 2) // per_unit
  c = 16
  params, stats, macs = 27 * c + 2 * c, 2 * c, size * size * 27 * c
  for l in range(1, 3 * n + 1):
    width = round(16 + alpha * l / (3 * n))
    in_size = size
    if l in (n + 1, 2 * n + 1):
      size //= 2
    if bottleneck:
      m, out = width, 4 * width
      params += 2 * c + c * m + 2 * m + 9 * m * m + 2 * m + m * out + 2 * out
      stats += 2 * c + 2 * m + 2 * m + 2 * out
      macs += in_size * in_size * c * m + size * size * (9 * m * m + m * out)
    else:
      out = width
      params += 2 * c + 9 * c * out + 2 * out + 9 * out * out + 2 * out
      stats += 2 * c + 4 * out
      macs += size * size * (9 * c * out + 9 * out * out)
    c = out
  return (params + 2 * c + c * num_classes + num_classes, stats + 2 * c,
          macs + c * num_classes)


# imgclsmob's pyramidnet_cifar.py trainable counts (BN scale and bias counted), CIFAR 32x32x3.
PUBLISHED = [
    ('pyramidnet110_a48', 10, 1_772_706),
    ('pyramidnet110_a84', 10, 3_904_446),
    ('pyramidnet110_a270', 10, 28_485_477),
    ('pyramidnet164_a270_bn', 10, 27_216_021),
    ('pyramidnet200_a240_bn', 10, 26_752_702),
    ('pyramidnet236_a220_bn', 10, 26_969_046),
    ('pyramidnet272_a200_bn', 10, 26_210_842),
    ('pyramidnet110_a48', 100, 1_778_556),
    ('pyramidnet272_a200_bn', 100, 26_288_692),
]


def test_unit_widths_grow_additively_over_all_units():
  widths = pyramidnet.unit_widths(110, 48, bottleneck=False)
  assert len(widths) == 54
  assert widths[:3] == [17, 18, 19]  # 16 + 48 l / 54 = 16.89, 17.78, 18.67, rounded
  assert widths[17:19] == [32, 33]  # no doubling at the stride-2 stage start
  assert widths[-1] == 64
  bottleneck = pyramidnet.unit_widths(272, 200, bottleneck=True)
  assert len(bottleneck) == 90 and bottleneck[0] == 4 * 18 and bottleneck[-1] == 4 * 216
  with pytest.raises(UserError, match=r'^model\.depth: a bottleneck PyramidNet needs depth = '
                     r'9n \+ 2 with n >= 1, got 58$'):
    pyramidnet.unit_widths(58, 48, bottleneck=True)


def test_hand_count_agrees_with_imgclsmob():
  for name, num_classes, published in PUBLISHED:
    model = create_model(name)
    by_hand = _pyramidnet_by_hand(model.depth, model.alpha, model.bottleneck, num_classes)
    assert by_hand[0] == published, name


@pytest.mark.parametrize('name,num_classes,published', PUBLISHED,
                         ids=[f'{n}-{k}' for n, k, _ in PUBLISHED])
def test_exact_params_of_the_published_presets(name, num_classes, published):
  # Built as the zoo table builds its rows, so the traces are shared with test_macs.
  model = create_model(name, num_classes=num_classes)
  params, batch_stats = count_params(model, CIFAR)
  assert params == published
  assert batch_stats == _pyramidnet_by_hand(model.depth, model.alpha, model.bottleneck)[1]


@pytest.mark.parametrize('name,macs', [('pyramidnet110_a48', 403_813_504),
                                       ('pyramidnet272_a200_bn', 4_488_778_176)])
def test_macs_pinned(name, macs):
  model = create_model(name)
  assert count_macs(model, CIFAR) == macs
  assert _pyramidnet_by_hand(model.depth, model.alpha, model.bottleneck)[2] == macs


def test_shakedrop_does_not_change_the_counts():
  assert count_params(create_model('pyramidnet110_a48', shakedrop=True), CIFAR) == (
      count_params(create_model('pyramidnet110_a48'), CIFAR))


def test_bad_fields_are_user_errors():
  with pytest.raises(UserError, match=r'^model\.depth: a basic PyramidNet needs depth = 6n \+ 2'):
    count_params(create_model('pyramidnet110_a48', depth=111))
  with pytest.raises(UserError, match=r'^model\.shakedrop_final_prob: '):
    count_params(create_model('pyramidnet110_a48', shakedrop_final_prob=0.0))
  with pytest.raises(UserError, match=r"^model\.shakedrop_level: unknown value 'channel'"):
    create_model('pyramidnet110_a48', shakedrop_level='channel')


def _run_compiled(fn, *args):
  return jax.jit(fn).lower(*args).compile({'xla_backend_optimization_level': 0})(*args)


@pytest.mark.parametrize('bottleneck', [False, True])
def test_unit_ends_with_bn_adds_the_end_padded_pooled_input_and_no_relu(bottleneck):
  x = jax.random.normal(jax.random.key(1), (2, 6, 6, 4))  # negative values included
  unit = pyramidnet.PyramidUnit(
      8 if bottleneck else 6, 2, bottleneck, layers.conv_def('torch', jnp.float32),
      layers.norm_def('torch', jnp.float32, False), jax.nn.relu)

  def run(x):
    variables = unit.init(jax.random.key(0, impl='rbg'), x, False)
    params = variables['params']
    last = sorted(k for k in params if k.startswith('BatchNorm'))[-1]
    # The last BN (highest index) at scale 0 and bias 0: the branch contributes nothing.
    params[last] = jax.tree_util.tree_map(jnp.zeros_like, params[last])
    return unit.apply(variables, x, False)

  out = _run_compiled(run, x)
  pooled = x.reshape(2, 3, 2, 3, 2, 4).mean(axis=(2, 4))
  np.testing.assert_allclose(out[..., :4], pooled, rtol=1e-6, atol=1e-6)  # no ReLU after add
  np.testing.assert_array_equal(out[..., 4:], 0.0)  # zeros appended after the input channels
  assert np.any(pooled < 0)


def test_unit_layout_in_the_parameter_tree():
  model = create_model('pyramidnet164_a270_bn', depth=11)  # one bottleneck unit per stage
  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
  params = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)['params']
  unit = params['stage2_unit1']
  # BN(in) conv1x1, BN conv3x3, BN conv1x1, final BN: inner width = out / 4 = round(16 + 180).
  assert [unit[f'BatchNorm_{i}']['scale'].shape[0] for i in range(4)] == [
      4 * 106, 196, 196, 4 * 196]
  assert [unit[f'Conv_{i}']['kernel'].shape for i in range(3)] == [
      (1, 1, 424, 196), (3, 3, 196, 196), (1, 1, 196, 784)]
  assert 'stem_norm' in params and 'head_norm' in params


# --- ShakeDrop.

def _shakedrop(survival_prob, level='image', train=True, seed=0, shape=(64, 2, 2, 3)):
  """Output and input gradient of ShakeDrop on a branch of ones: the forward coefficient and
  the backward one, per element."""
  module = layers.ShakeDrop(survival_prob, level)
  rngs = {'shakedrop': jax.random.key(seed)}

  def f(branch):
    return module.apply({}, branch, train, rngs=rngs)

  ones = jnp.ones(shape)
  return np.asarray(f(ones)), np.asarray(jax.grad(lambda b: jnp.sum(f(b)))(ones))


def _many(survival_prob, draws=400, level='image'):
  """Forward and backward coefficients of `draws` independent calls, per image: (draws, 64)."""
  fwd, bwd = jax.vmap(lambda seed: _shakedrop_traced(survival_prob, level, seed))(
      jnp.arange(draws))
  return np.asarray(fwd), np.asarray(bwd)


def _shakedrop_traced(survival_prob, level, seed):
  module = layers.ShakeDrop(survival_prob, level)
  rngs = {'shakedrop': jax.random.fold_in(jax.random.key(0), seed)}

  def f(branch):
    return module.apply({}, branch, True, rngs=rngs)

  ones = jnp.ones((64, 1, 1, 1))
  return f(ones)[:, 0, 0, 0], jax.grad(lambda b: jnp.sum(f(b)))(ones)[:, 0, 0, 0]


def test_shakedrop_coefficient_statistics():
  fwd, bwd = _many(0.5)
  # The gate is one per call: a kept call has coefficient 1 both ways for every image.
  kept = np.all(fwd == 1.0, axis=1) & np.all(bwd == 1.0, axis=1)
  assert 0.4 < kept.mean() < 0.6  # P(b = 1) = p_l = 0.5 over 400 calls
  alpha, beta = fwd[~kept].ravel(), bwd[~kept].ravel()
  # Dropped: forward alpha ~ U(-1, 1), backward an independent beta ~ U(0, 1), per image.
  assert alpha.min() >= -1 and alpha.max() <= 1 and beta.min() >= 0 and beta.max() <= 1
  assert abs(alpha.mean()) < 0.02 and abs(alpha.std() - 1 / np.sqrt(3)) < 0.01
  assert abs(beta.mean() - 0.5) < 0.01 and abs(beta.std() - 1 / np.sqrt(12)) < 0.01
  assert (alpha < 0).mean() > 0.45  # the branch is really flipped half the time
  assert abs(np.corrcoef(alpha, beta)[0, 1]) < 0.03
  assert len(np.unique(fwd[~kept][0])) == 64  # one coefficient per image


def test_shakedrop_gate_probability_follows_p():
  fwd, _ = _many(0.8)
  assert 0.74 < np.all(fwd == 1.0, axis=1).mean() < 0.86


def test_shakedrop_levels():
  out, grad = _shakedrop(1e-6, 'pixel', shape=(4, 2, 2, 3))  # gate ~never 1
  assert len(np.unique(out)) == out.size and len(np.unique(grad)) == grad.size
  out, grad = _shakedrop(1e-6, 'batch')
  assert len(np.unique(out)) == 1 and len(np.unique(grad)) == 1 and out.flat[0] != grad.flat[0]
  out, grad = _shakedrop(1e-6, 'image')
  per_image = out.reshape(out.shape[0], -1)
  assert np.all(per_image == per_image[:, :1]) and len(np.unique(per_image[:, 0])) == 64


def test_shakedrop_eval_is_the_expectation_without_randomness():
  out, grad = _shakedrop(0.7, train=False)
  np.testing.assert_allclose(out, 0.7, rtol=1e-7)
  np.testing.assert_allclose(grad, 0.7, rtol=1e-7)
  # No 'shakedrop' rng is needed at inference.
  np.testing.assert_allclose(layers.ShakeDrop(0.25).apply({}, jnp.full((2, 1), 4.0), False), 1.0)
  # E[b + a - b a] = p + (1 - p) E[a] = p: the training forward averages to the eval scale.
  fwd, _ = _many(0.7, draws=1000)
  assert abs(fwd.mean() - 0.7) < 0.02


def test_model_assigns_linear_gate_probabilities_over_units():
  model = create_model('pyramidnet110_a48', depth=20, shakedrop=True)  # 9 units
  seen = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, layers.ShakeDrop) and context.method_name == '__call__':
      seen.append(context.module.survival_prob)
    return next_fun(*args, **kwargs)

  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
  with nn.intercept_methods(record):
    jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  np.testing.assert_allclose(seen, 1 - 0.5 * np.arange(1, 10) / 9)


def _loss_and_grad(x, shakedrop):
  """Train-mode loss and parameter gradient of a 3-unit PyramidNet with fixed keys."""
  model = create_model('pyramidnet110_a48', depth=8, alpha=6, shakedrop=shakedrop,
                       shakedrop_final_prob=0.1, shakedrop_level='batch')
  rngs = {'shakedrop': jax.random.key(5, impl='rbg')}

  def run(x):
    variables = model.init(jax.random.key(0, impl='rbg'), x, train=False)

    def loss(params):
      out, _ = model.apply({**variables, 'params': params}, x, train=True,
                           mutable=['batch_stats'], rngs=rngs)
      return jnp.sum(out * jnp.arange(10.0))

    return jax.value_and_grad(loss)(variables['params'])

  return _run_compiled(run, x)


def test_model_gradient_uses_the_backward_coefficient(monkeypatch):
  """With fixed keys, ShakeDrop's gradient (beta) is not the derivative of its forward pass
  (alpha): replacing `shake` by a plain product with the forward coefficient keeps the loss
  and changes the gradient."""
  x = jax.random.normal(jax.random.key(1), (4, 8, 8, 3))
  loss, grads = _loss_and_grad(x, shakedrop=True)
  monkeypatch.setattr(layers, 'shake', lambda x, forward, backward: x * forward)
  true_loss, true_grads = _loss_and_grad(x, shakedrop=True)
  np.testing.assert_allclose(loss, true_loss, rtol=1e-6)
  stem, true_stem = grads['stem']['kernel'], true_grads['stem']['kernel']
  assert np.linalg.norm(stem - true_stem) > 0.2 * np.linalg.norm(true_stem)
  # The head comes after every ShakeDrop: its gradient does not depend on the backward pass.
  np.testing.assert_allclose(grads['head']['bias'], true_grads['head']['bias'], rtol=1e-5)
