"""PatchUp (Faramarzi et al. 2020, arXiv:2006.07794; the authors' code chandar-lab/PatchUp):
mixing of contiguous blocks of HIDDEN features, for every residual family through one mechanism.
SPEC section 9.

One training step, as the authors' code runs it:
- With probability `prob` (per batch) PatchUp runs at all; then ONE of the points 0..k is picked
  uniformly: 0 is the input image, where the authors' code applies CutMix (here
  `jaxcls.data.mixing.cutmix`, box centre uniform, lam ~ U(0, 1) per sample); point i >= 1 is
  the features ENTERING stage i (i = 1: the stem's output, i = 2: the first stage's output, ...).
- At a hidden point of shape (H, W, C), one mask for the whole batch: every feature is a block
  centre with probability gamma * H*W / (b^2 (H - b + 1)(W - b + 1)) (DropBlock's rate, so that
  about a fraction gamma of the features fall in some block), and a b x b max-pool (stride 1,
  SAME) grows the centres into b x b blocks, per channel.
- hard: the features inside the blocks are replaced by those of a partner (one permutation of
  the batch); soft: they become lam * own + (1 - lam) * partner's, lam ~ Beta(2, 2) per batch.
- With u the changed fraction (the mask's mean), the targets become (1 - u) y + u y_partner
  (hard) or (1 - u) y + u (lam y + (1 - lam) y_partner) (soft); at the input, CutMix's.
- Loss: the authors' objective on a PatchUp step is a CutMix-style term u' l(y) + (1 - u') l(y_b)
  PLUS l(reweighted targets); the loss being linear in the target, that is TWICE the loss on the
  reweighted targets, so PatchUp steps carry loss weight 2 (`Mixed.weights`), other steps 1.
  Their l is BCE on softmax outputs for every method, baselines included; jaxcls trains every
  method with softmax cross-entropy, so l is cross-entropy here.
Deviations from the authors' code: the block-centre rate is computed at each point's own size
(their module caches the first size it sees; the two agree at the default k = 2, where both
hidden points are 32x32 on CIFAR) and their CutMix draws one lam and box per batch.

The mechanism: `flax.linen.intercept_methods` wraps the model's forward pass and rewrites the
input of the first block of each stage; a stage starts at the first block and at every block
with `strides > 1`. The blocks (`FAMILIES`, each with a `strides` field):
    ResNetV2 (resnet*, resnext*, senet*, wideresnet18): resnet_v2.BasicUnit, BottleneckUnit
    WideResNet (wrn28_10):                              wrn.WideBasic
    ShakeShake (shake_shake26_*):                       shake_shake.ShakeBlock
    PyramidNet (pyramidnet*):                           pyramidnet.PyramidUnit
so the families need no PatchUp code. It lives with the models (not in jaxcls/data) because it
acts inside the model's forward pass and knows the families' blocks; the train step calls it
around `model.apply` (`split_mix` gives it next to the input-side mix).
"""

from collections.abc import Callable
import dataclasses
import types
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxcls.data import mixing
from jaxcls.errors import UserError
from jaxcls.models import pyramidnet, resnet_v2, shake_shake, wrn

PATCHUP_NAMES = ('patchup_hard', 'patchup_soft')
# The paper's settings per mode (SPEC section 9, the authors' README commands).
DEFAULTS = {'hard': dict(prob=0.7, gamma=0.5), 'soft': dict(prob=1.0, gamma=0.75)}
# The model classes PatchUp supports and the module classes that count as their blocks.
FAMILIES: dict[type, tuple[type, ...]] = {
    resnet_v2.ResNetV2: (resnet_v2.BasicUnit, resnet_v2.BottleneckUnit),
    wrn.WideResNet: (wrn.WideBasic,),
    shake_shake.ShakeShake: (shake_shake.ShakeBlock,),
    pyramidnet.PyramidNet: (pyramidnet.PyramidUnit,),
}
BLOCKS = tuple(block for blocks in FAMILIES.values() for block in blocks)
SOFT_LAMBDA_ALPHA = 2.0  # lam ~ Beta(2, 2) for soft PatchUp
PATCHUP_LOSS_WEIGHT = 2.0


class Mixed(NamedTuple):
  """What a hidden mix did to a batch."""
  targets: jax.Array  # (B, K) float32, rows summing to 1
  weights: jax.Array  # (B,) loss weight: PATCHUP_LOSS_WEIGHT where PatchUp ran, else 1
  point: jax.Array  # int32 scalar: -1 (not applied), 0 (the input), i (entering stage i)
  changed: jax.Array  # float32 scalar: the fraction of features changed at a hidden point


def block_mask(key: jax.Array, shape: tuple[int, int, int], gamma: float,
               block_size: int) -> jax.Array:
  """(H, W, C) float32 mask, 1 inside b x b blocks around Bernoulli-drawn centres, else 0.

  The centre rate is gamma * H*W / (b^2 (H - b + 1)(W - b + 1)) (DropBlock, Ghiasi et al. 2018,
  as PatchUp's code uses it). Raises UserError when the block does not fit the map.
  """
  height, width, _ = shape
  b = block_size
  if b > min(height, width):
    raise UserError(f'mix.patchup_block_size: {b} does not fit a {height}x{width} feature map; '
                    'use a smaller block or fewer candidate blocks (mix.patchup_blocks)')
  rate = gamma * height * width / (b * b * (height - b + 1) * (width - b + 1))
  return grow_blocks(jax.random.bernoulli(key, min(rate, 1.0), shape).astype(jnp.float32), b)


def grow_blocks(centres: jax.Array, block_size: int) -> jax.Array:
  """(H, W, C) 0/1 centres -> 1 on the b x b square around each centre (clipped at the border):
  a b x b max-pool at stride 1 with SAME padding, as PatchUp's `max_pool2d(k, 1, k // 2)`."""
  b = block_size
  return nn.max_pool(centres[None], (b, b), strides=(1, 1), padding='SAME')[0]


def patch_features(h: jax.Array, holes: jax.Array, perm: jax.Array, mode: str,
                   lam: jax.Array) -> jax.Array:
  """(B, H, W, C) features with the masked features swapped with (hard) or mixed into (soft)
  those of sample perm[i]; `holes` (H, W, C) is 1 where features change."""
  partner = h[perm]
  if mode == 'soft':
    lam = lam.astype(h.dtype)
    partner = lam * h + (1 - lam) * partner
  return jnp.where(holes > 0, partner, h)


def patch_targets(targets: jax.Array, perm: jax.Array, changed: jax.Array, mode: str,
                  lam: jax.Array) -> jax.Array:
  """Targets reweighted by the changed fraction: (1 - u) y + u y_b, where y_b is the partner's
  target (hard) or lam y + (1 - lam) y_partner (soft)."""
  partner = targets[perm]
  if mode == 'soft':
    partner = lam * targets + (1 - lam) * partner
  return (1 - changed) * targets + changed * partner


class Draws(NamedTuple):
  """One batch's PatchUp choices: the point (-1: none), the partner permutation, soft's lam,
  and the keys of the input CutMix and of the hidden masks."""
  point: jax.Array
  perm: jax.Array
  lam: jax.Array
  cutmix_key: jax.Array
  mask_key: jax.Array


@dataclasses.dataclass(frozen=True)
class PatchUp:
  """PatchUp around a forward pass: `PatchUp(...)(key, forward, x, targets)`.

  Attributes:
    mode: hard | soft.
    prob: probability that a batch is patched at all.
    gamma: the fraction of features to change (before the blocks overlap).
    block_size: b, odd: the side of the square blocks, in features of the chosen map.
    blocks: k: the point is drawn uniformly from 0 (the input, CutMix) .. k (entering stage k).
  """
  mode: str = 'hard'
  prob: float = 0.7
  gamma: float = 0.5
  block_size: int = 7
  blocks: int = 2

  def __call__(self, key: jax.Array, forward: Callable[[jax.Array], Any], x: jax.Array,
               targets: jax.Array) -> tuple[Any, Mixed]:
    """Runs `forward(x)` with PatchUp at one random point; returns its output and the `Mixed`
    targets. x: (B, H, W, C) images; targets: (B, K) float. Raises UserError for a model
    without supported blocks (at trace time) or fewer stages than `blocks`."""
    draws = self.draw(key, x.shape[0])
    point, perm, lam = draws.point, draws.perm, draws.lam
    cut_x, cut_targets = mixing.cutmix(draws.cutmix_key, x, targets, alpha=1.0)
    x = jnp.where(point == 0, cut_x, x)

    changed = []  # per stage start met so far: the fraction its mask changes

    def at_stage_starts(next_fun, args, kwargs, context):
      module = context.module
      if (context.method_name == '__call__' and isinstance(module, BLOCKS)
          and (not changed or module.strides > 1)):
        i = len(changed) + 1
        if i > self.blocks:  # past the candidates: only counted
          changed.append(None)
        else:
          h = args[0]
          holes = self.mask(draws, i, h.shape[1:])
          changed.append(jnp.mean(holes))
          h = jnp.where(point == i, patch_features(h, holes, perm, self.mode, lam), h)
          args = (h, *args[1:])
      return next_fun(*args, **kwargs)

    with nn.intercept_methods(at_stage_starts):
      out = forward(x)
    if len(changed) < self.blocks:
      raise UserError(
          f'mix.patchup_blocks: {self.blocks} hidden points, but the model has '
          f'{len(changed)} stages of PatchUp blocks ({", ".join(c.__name__ for c in BLOCKS)}); '
          f'use at most {len(changed)}')
    u = sum((jnp.where(point == i + 1, c, 0.0) for i, c in enumerate(changed[:self.blocks])),
            jnp.float32(0.0))
    hidden_targets = patch_targets(targets, perm, u, self.mode, lam)
    mixed_targets = jnp.where(point == 0, cut_targets,
                              jnp.where(point > 0, hidden_targets, targets))
    weights = jnp.where(point >= 0, PATCHUP_LOSS_WEIGHT, 1.0) * jnp.ones(x.shape[:1])
    return out, Mixed(mixed_targets, weights, point.astype(jnp.int32), u.astype(jnp.float32))

  def draw(self, key: jax.Array, batch: int) -> Draws:
    """The random choices of one batch, from the 'mix' stream's key."""
    apply_key, point_key, perm_key, lam_key, cutmix_key, mask_key = jax.random.split(key, 6)
    point = jnp.where(jax.random.bernoulli(apply_key, self.prob),
                      jax.random.randint(point_key, (), 0, self.blocks + 1), -1)
    return Draws(point, jax.random.permutation(perm_key, batch),
                 jax.random.beta(lam_key, SOFT_LAMBDA_ALPHA, SOFT_LAMBDA_ALPHA), cutmix_key,
                 mask_key)

  def mask(self, draws: Draws, point: int, shape: tuple[int, int, int]) -> jax.Array:
    """The (H, W, C) block mask of hidden point `point` (each point draws its own)."""
    return block_mask(jax.random.fold_in(draws.mask_key, point), shape, self.gamma,
                      self.block_size)


def no_hidden_mix(key: jax.Array, forward: Callable[[jax.Array], Any], x: jax.Array,
                  targets: jax.Array) -> tuple[Any, Mixed]:
  """The identity hidden mix: `forward(x)` and the targets unchanged, loss weight 1."""
  del key
  return forward(x), Mixed(targets, jnp.ones(x.shape[:1]), jnp.int32(-1), jnp.float32(0.0))


HiddenMix = Callable[[jax.Array, Callable[[jax.Array], Any], jax.Array, jax.Array],
                     tuple[Any, Mixed]]


def _check_number(field: str, value: Any, low: float, high: float, what: str) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
      low <= value <= high):
    raise UserError(f'mix.{field}: must be {what}, got {value!r}')


def make_patchup(mix_config: Any) -> PatchUp:
  """`PatchUp` from `config.mix` (name patchup_hard | patchup_soft; patchup_prob and
  patchup_gamma default to the mode's paper values when None). Raises UserError."""
  mode = mix_config.name.split('_', 1)[1]
  prob = mix_config.patchup_prob
  gamma = mix_config.patchup_gamma
  prob = DEFAULTS[mode]['prob'] if prob is None else prob
  gamma = DEFAULTS[mode]['gamma'] if gamma is None else gamma
  _check_number('patchup_prob', prob, 0.0, 1.0, 'a probability in [0, 1]')
  _check_number('patchup_gamma', gamma, 0.0, 1.0, 'a fraction in [0, 1]')
  block_size, blocks = mix_config.patchup_block_size, mix_config.patchup_blocks
  if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1 or (
      block_size % 2 == 0):
    raise UserError(f'mix.patchup_block_size: must be an odd positive integer (the blocks are '
                    f'centred on a feature), got {block_size!r}')
  if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 0:
    raise UserError(f'mix.patchup_blocks: must be an integer >= 0 (0: the input only), got '
                    f'{blocks!r}')
  return PatchUp(mode, float(prob), float(gamma), block_size, blocks)


def split_mix(mix_config: Any, num_classes: int, label_smoothing: float = 0.0,
              model: nn.Module | None = None) -> tuple[mixing.MixFn, HiddenMix]:
  """The input-side mix and the hidden mix of `config.mix`.

  PatchUp's names give one-hot (smoothed) targets at the input and `PatchUp` around the forward
  pass; every other name gives `jaxcls.data.mixing.make_mix`'s mix and `no_hidden_mix`. With
  `model`, PatchUp checks that the model is of a supported family. Raises UserError.
  """
  name = mix_config.name
  if name not in PATCHUP_NAMES:
    if name not in mixing.MIX_NAMES:
      raise UserError(f"mix.name: unknown mix {name!r}; choose one of: "
                      f"{', '.join(mixing.MIX_NAMES + PATCHUP_NAMES)}")
    return mixing.make_mix(mix_config, num_classes, label_smoothing), no_hidden_mix
  patchup = make_patchup(mix_config)
  if model is not None and not isinstance(model, tuple(FAMILIES)):
    raise UserError(f'mix.name: {name} needs a model built of residual blocks '
                    f"({', '.join(f.__name__ for f in FAMILIES)}), not "
                    f'{type(model).__name__}; choose another mix or model')
  # One-hot (smoothed) targets at the input; the input-side fields are still checked.
  input_side = types.SimpleNamespace(name='none', alpha=mix_config.alpha, prob=mix_config.prob,
                                     cutmix_box=mix_config.cutmix_box)
  return mixing.make_mix(input_side, num_classes, label_smoothing), patchup
