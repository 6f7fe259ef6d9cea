"""PatchUp (SPEC §9): the DropBlock-style mask, hard and soft patching, the reweighted targets,
and the one interceptor working on every supported family."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import default
from jaxcls.errors import UserError
from jaxcls.models import create_model, patchup


def _expected_fraction(size, block_size, gamma):
  """E[mask mean] on a size x size map: a feature is covered unless no centre lies in the
  (clipped) b x b window around it; each feature is a centre with the DropBlock rate."""
  rate = gamma * size * size / (block_size**2 * (size - block_size + 1)**2)
  half = block_size // 2
  reach = np.array([min(i, half) + min(size - 1 - i, half) + 1 for i in range(size)])
  return np.mean(1 - (1 - rate)**np.outer(reach, reach))


@pytest.mark.parametrize('gamma', [0.5, 0.75])
def test_mask_fraction_follows_gamma(gamma):
  masks = jax.vmap(lambda k: patchup.block_mask(k, (32, 32, 128), gamma, 7))(
      jax.random.split(jax.random.key(0), 8))
  fraction = float(jnp.mean(masks))
  assert fraction == pytest.approx(_expected_fraction(32, 7, gamma), abs=0.01)
  # The rate aims at gamma; overlapping blocks cover somewhat less.
  assert gamma - 0.15 < fraction < gamma
  assert set(np.unique(masks)) == {0.0, 1.0}


def test_mask_is_one_per_channel_and_differs_between_channels():
  mask = np.asarray(patchup.block_mask(jax.random.key(1), (16, 16, 8), 0.5, 3))
  assert mask.shape == (16, 16, 8)
  assert not all(np.array_equal(mask[..., 0], mask[..., c]) for c in range(1, 8))


def test_blocks_are_b_by_b_squares_clipped_at_the_border():
  centres = np.zeros((12, 12, 1), np.float32)
  centres[5, 6, 0] = 1.0
  centres[0, 11, 0] = 1.0
  grown = np.asarray(patchup.grow_blocks(jnp.asarray(centres), 5))[..., 0]
  expected = np.zeros((12, 12))
  expected[3:8, 4:9] = 1  # rows 5 +- 2, columns 6 +- 2
  expected[0:3, 9:12] = 1  # the corner block keeps its inside part
  np.testing.assert_array_equal(grown, expected)


def test_block_too_large_for_the_map_is_a_user_error():
  with pytest.raises(UserError, match=r'^mix\.patchup_block_size: 7 does not fit a 4x4 feature '
                     r'map'):
    patchup.block_mask(jax.random.key(0), (4, 4, 2), 0.5, 7)


def _features_and_holes():
  h = jax.random.normal(jax.random.key(2), (4, 6, 6, 3))
  holes = jnp.zeros((6, 6, 3)).at[1:4, 2:5, 1].set(1.0)
  return h, holes, jnp.array([2, 3, 0, 1])


def test_hard_patchup_swaps_the_masked_features_with_the_partner():
  h, holes, perm = _features_and_holes()
  out = np.asarray(patchup.patch_features(h, holes, perm, 'hard', jnp.float32(0.3)))
  inside = np.asarray(holes, bool)
  np.testing.assert_array_equal(out[:, inside], np.asarray(h)[np.asarray(perm)][:, inside])
  np.testing.assert_array_equal(out[:, ~inside], np.asarray(h)[:, ~inside])


def test_soft_patchup_mixes_the_masked_features_with_lambda():
  h, holes, perm = _features_and_holes()
  lam = 0.3
  out = np.asarray(patchup.patch_features(h, holes, perm, 'soft', jnp.float32(lam)))
  inside = np.asarray(holes, bool)
  h = np.asarray(h)
  np.testing.assert_allclose(out[:, inside], lam * h[:, inside] + (1 - lam) * h[perm][:, inside],
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(out[:, ~inside], h[:, ~inside])


@pytest.mark.parametrize('mode', ['hard', 'soft'])
def test_targets_are_reweighted_by_the_changed_fraction(mode):
  targets = jax.nn.one_hot(jnp.array([0, 1, 2, 3]), 5)
  perm = jnp.array([1, 0, 3, 2])
  changed, lam = jnp.float32(0.3), jnp.float32(0.25)
  out = np.asarray(patchup.patch_targets(targets, perm, changed, mode, lam))
  np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
  own, partner = out[0, 0], out[0, 1]
  if mode == 'hard':  # the changed fraction goes to the partner's label
    assert (own, partner) == pytest.approx((0.7, 0.3))
  else:  # of the changed fraction, lam stays with the sample's own label
    assert (own, partner) == pytest.approx((0.7 + 0.3 * 0.25, 0.3 * 0.75))


# --- The interceptor on every supported family (tiny presets, 8x8 inputs, 3x3 blocks).

FAMILY_PRESETS = [
    ('resnet18', dict(stage_sizes=(1, 1, 1, 1), base_width=4), 4),
    ('senet50', dict(stage_sizes=(1, 1), base_width=4, cardinality=2), 2),  # ResNeXt + SE
    ('wrn28_10', dict(depth=10, widen=1), 3),
    ('shake_shake26_2x64d', dict(depth=8, base_width=4), 3),
    ('pyramidnet110_a48', dict(depth=8, alpha=6, shakedrop=True), 3),
]
# One family in the default run, every family under --runslow (CI): 5-9 s of compile each.
FAMILY_PARAMS = [pytest.param(*p, id=p[0], marks=() if p[0] == 'resnet18' else pytest.mark.slow)
                 for p in FAMILY_PRESETS]
BATCH = 4


def _stage_inputs(model, x, hidden_mix, keys):
  """For each key: logits, `Mixed`, and the inputs of the blocks that start a stage before and
  after PatchUp rewrote them (one program, so unchanged features are bitwise equal)."""
  variables = model.init(jax.random.key(0, impl='rbg'), x, train=False)
  rngs = {name: jax.random.key(i, impl='rbg')
          for i, name in enumerate(('drop_path', 'shake', 'dropout', 'shakedrop'))}
  targets = jax.nn.one_hot(jnp.arange(BATCH) % 10, 10)

  def recorder(seen):
    def record(next_fun, args, kwargs, context):
      if (context.method_name == '__call__' and isinstance(context.module, patchup.BLOCKS)
          and (not seen or context.module.strides > 1)):
        seen.append(args[0])
      return next_fun(*args, **kwargs)
    return record

  def one(key):
    before, after = [], []

    def forward(x):
      with nn.intercept_methods(recorder(after)):  # runs after PatchUp's interceptor
        return model.apply(variables, x, train=True, mutable=['batch_stats'], rngs=rngs)[0]

    with nn.intercept_methods(recorder(before)):  # runs before it
      logits, mixed = hidden_mix(key, forward, x, targets)
    return logits, mixed, before, after

  run = jax.jit(jax.vmap(one))
  return run.lower(keys).compile({'xla_backend_optimization_level': 0})(keys)


def _check_patched(hidden_mix, keys, mixed, before, after):
  """At each key's point, the stage input is exactly `patch_features` of the drawn mask and
  partner, the targets are `patch_targets` of its changed fraction; elsewhere nothing moved."""
  one_hot = jax.nn.one_hot(jnp.arange(BATCH) % 10, 10)
  for k, key in enumerate(keys):
    draws = hidden_mix.draw(key, BATCH)
    point = int(mixed.point[k])
    assert point == int(draws.point)
    for stage, (h, patched) in enumerate(zip(before, after), start=1):
      if stage != point:
        if point < 1 or stage < point:  # what comes later sees patched features
          np.testing.assert_array_equal(patched[k], h[k])
        continue
      holes = hidden_mix.mask(draws, point, h.shape[2:])
      expected = patchup.patch_features(h[k], holes, draws.perm, hidden_mix.mode, draws.lam)
      np.testing.assert_allclose(patched[k], expected, rtol=1e-6, atol=1e-7)
      assert float(mixed.changed[k]) == pytest.approx(float(jnp.mean(holes)))
      assert 0 < float(mixed.changed[k]) < 1
      np.testing.assert_allclose(
          mixed.targets[k], patchup.patch_targets(one_hot, draws.perm, jnp.mean(holes),
                                                  hidden_mix.mode, draws.lam), rtol=1e-6)
    if point == -1:
      np.testing.assert_array_equal(mixed.targets[k], one_hot)


@pytest.mark.parametrize('name,overrides,stages', FAMILY_PARAMS)
def test_patchup_on_every_family(name, overrides, stages):
  model = create_model(name, **overrides)
  x = jax.random.normal(jax.random.key(1), (BATCH, 8, 8, 3))
  keys = jax.random.split(jax.random.key(3), 24)
  hard = patchup.PatchUp('hard', prob=0.75, gamma=0.5, block_size=3, blocks=2)
  logits, mixed, before, after = _stage_inputs(model, x, hard, keys)
  assert len(before) == len(after) == stages  # every stage start was found
  points = np.asarray(mixed.point)
  assert set(points) == {-1, 0, 1, 2}  # not applied, the input (CutMix), two hidden points
  assert np.all(np.isfinite(logits))
  np.testing.assert_allclose(np.asarray(mixed.targets).sum(axis=-1), 1.0, rtol=1e-6)
  np.testing.assert_array_equal(mixed.weights, np.where(points >= 0, 2.0, 1.0)[:, None] *
                                np.ones(BATCH))
  _check_patched(hard, keys, mixed, before, after)


def test_soft_mode_mixes_hidden_features():
  model = create_model('resnet18', stage_sizes=(1, 1), base_width=4)
  x = jax.random.normal(jax.random.key(1), (BATCH, 8, 8, 3))
  keys = jax.random.split(jax.random.key(4), 8)
  soft = patchup.PatchUp('soft', prob=1.0, gamma=0.75, block_size=3, blocks=1)
  _, mixed, before, after = _stage_inputs(model, x, soft, keys)
  assert 1 in set(np.asarray(mixed.point))
  _check_patched(soft, keys, mixed, before, after)


def test_probability_zero_leaves_everything_untouched():
  model = create_model('wrn28_10', depth=10, widen=1)
  x = jax.random.normal(jax.random.key(1), (BATCH, 8, 8, 3))
  keys = jax.random.split(jax.random.key(5), 2)
  off = patchup.PatchUp('hard', prob=0.0, gamma=0.5, block_size=3, blocks=2)
  logits, mixed, before, after = _stage_inputs(model, x, off, keys)
  plain_logits, plain, _, _ = _stage_inputs(model, x, patchup.no_hidden_mix, keys)
  for h, patched in zip(before, after):
    np.testing.assert_array_equal(patched, h)
  np.testing.assert_allclose(logits, plain_logits, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(mixed.targets, plain.targets)
  np.testing.assert_array_equal(mixed.point, -1)
  np.testing.assert_array_equal(mixed.weights, 1.0)


def test_eval_is_untouched():
  """PatchUp acts only inside its call: a forward pass after it is the model's own."""
  model = create_model('pyramidnet110_a48', depth=8, alpha=6)
  x = jax.random.normal(jax.random.key(1), (BATCH, 8, 8, 3))
  hard = patchup.PatchUp('hard', prob=1.0, gamma=0.5, block_size=3, blocks=3)

  def run(x):
    variables = model.init(jax.random.key(0, impl='rbg'), x, train=False)
    forward = functools.partial(model.apply, variables, train=False)
    before = forward(x)
    patched, mixed = hard(jax.random.key(6, impl='rbg'), forward, x,
                          jax.nn.one_hot(jnp.arange(BATCH), 10))
    return before, patched, mixed.point, forward(x)

  before, patched, point, after = jax.jit(run).lower(x).compile(
      {'xla_backend_optimization_level': 0})(x)
  assert int(point) >= 0 and not np.allclose(patched, before)
  np.testing.assert_array_equal(after, before)


def test_too_many_candidate_blocks_and_unsupported_models_are_user_errors():
  x = jax.ShapeDtypeStruct((2, 8, 8, 3), jnp.float32)
  targets = jnp.zeros((2, 10))
  model = create_model('wrn28_10', depth=10, widen=1)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  four = patchup.PatchUp('hard', 1.0, 0.5, 3, blocks=4)
  with pytest.raises(UserError, match=r'^mix\.patchup_blocks: 4 hidden points, but the model has '
                     r'3 stages'):
    jax.eval_shape(lambda v, x: four(jax.random.key(0), lambda x: model.apply(v, x, train=False),
                                     x, targets), variables, x)
  config = default.get_config().mix
  config.name = 'patchup_hard'
  with pytest.raises(UserError, match=r'^mix\.name: patchup_hard needs a model built of residual '
                     r'blocks .*not DenseNet'):
    patchup.split_mix(config, 10, model=create_model('densenet100k12'))


def _mix_config(**fields):
  config = default.get_config().mix
  for key, value in fields.items():
    config[key] = value
  return config


def test_split_mix_defaults_per_mode_and_one_hot_input_targets():
  mix, hard = patchup.split_mix(_mix_config(name='patchup_hard'), 10)
  assert hard == patchup.PatchUp('hard', 0.7, 0.5, 7, 2)
  _, soft = patchup.split_mix(_mix_config(name='patchup_soft'), 10)
  assert soft == patchup.PatchUp('soft', 1.0, 0.75, 7, 2)
  images = jnp.ones((2, 4, 4, 3))
  out, targets = mix(jax.random.key(0), images, jnp.array([1, 2]))
  np.testing.assert_array_equal(out, images)
  np.testing.assert_array_equal(targets, jax.nn.one_hot(jnp.array([1, 2]), 10))
  _, custom = patchup.split_mix(_mix_config(name='patchup_soft', patchup_prob=0.5,
                                            patchup_gamma=0.9, patchup_block_size=5,
                                            patchup_blocks=3), 10)
  assert custom == patchup.PatchUp('soft', 0.5, 0.9, 5, 3)
  _, none = patchup.split_mix(_mix_config(name='cutmix'), 10)
  assert none is patchup.no_hidden_mix


@pytest.mark.parametrize('fields,message', [
    (dict(name='patchup'), r"^mix\.name: unknown mix 'patchup'; choose one of: none, mixup, "
                           r"cutmix, patchup_hard, patchup_soft$"),
    (dict(name='patchup_hard', patchup_block_size=6), r'^mix\.patchup_block_size: must be an '
                                                      r'odd positive integer'),
    (dict(name='patchup_hard', patchup_prob=1.5), r'^mix\.patchup_prob: must be a probability'),
    (dict(name='patchup_soft', patchup_gamma=-0.1), r'^mix\.patchup_gamma: '),
    (dict(name='patchup_soft', patchup_blocks=-1), r'^mix\.patchup_blocks: must be an integer'),
])
def test_bad_patchup_fields_are_user_errors(fields, message):
  with pytest.raises(UserError, match=message):
    patchup.split_mix(_mix_config(**fields), 10)


def test_config_fields_are_declared():
  config = default.get_config()
  assert isinstance(config.mix, ml_collections.ConfigDict)
  assert (config.mix.patchup_prob, config.mix.patchup_gamma) == (None, None)
  assert (config.mix.patchup_block_size, config.mix.patchup_blocks) == (7, 2)
