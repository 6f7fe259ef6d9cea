"""EfficientNet, MobileNetV3 and NAT (the MBConv families): exact counts against timm,
torchvision and NAT's published subnet, MACs, the CIFAR adaptation, drop connect, one compiled
train step, and bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcls.errors import UserError
from jaxcls.models import count_macs, count_params, create_model, mbconv
from jaxcls.models.layers import make_divisible
from jaxcls.models.nat import subnet_table
from tests.conftest import eval_forward_macs
from tests.test_bf16 import _numpy_init
from tests.test_configs import load

CIFAR = (1, 32, 32, 3)
IMAGENET = (1, 224, 224, 3)

# `create_model(name, num_classes, stem='imagenet')` on 224x224x3: (params, batch_stats) as
# timm / torchvision print them (issue 9).
IMAGENET_COUNTS = [
    ('efficientnet_b0', 1000, 5_288_548, 42_016),
    ('efficientnet_b0', 10, 4_020_358, 42_016),
    ('mobilenetv3_large', 1000, 5_483_032, 24_400),
    ('mobilenetv3_large', 10, 4_214_842, 24_400),
    ('mobilenetv3_small', 1000, 2_542_856, 12_112),
]


@pytest.mark.parametrize('name,num_classes,params,batch_stats', IMAGENET_COUNTS)
def test_imagenet_form_counts(name, num_classes, params, batch_stats):
  model = create_model(name, num_classes=num_classes, stem='imagenet')
  assert count_params(model, IMAGENET) == (params, batch_stats)


# (B, resolution, torchvision's num_params): the compound scaling of width, depth and resolution.
TORCHVISION_EFFICIENTNETS = [(1, 240, 7_794_184), (2, 260, 9_109_994), (3, 300, 12_233_232),
                             (4, 380, 19_341_616), (5, 456, 30_389_784), (6, 528, 43_040_704),
                             (7, 600, 66_347_960)]


@pytest.mark.parametrize('b,resolution,params', TORCHVISION_EFFICIENTNETS)
def test_efficientnet_scaling_matches_torchvision(b, resolution, params):
  model = create_model(f'efficientnet_b{b}', num_classes=1000, stem='imagenet')
  assert count_params(model, (1, resolution, resolution, 3))[0] == params


# The CIFAR forms (10 classes, 32x32x3 upsampled x7 to 224 px): (params, batch_stats, MACs).
CIFAR_COUNTS = [
    ('efficientnet_b0', 4_020_358, 42_016, 384_547_552),
    ('mobilenetv3_large', 4_214_842, 24_400, 215_322_560),
    ('mobilenetv3_small', 1_528_106, 12_112, 55_496_640),
    ('nat_m1', 6_153_322, 32_576, 389_332_120),
    ('nat_m2', 6_862_186, 36_848, 464_108_720),
]


@pytest.mark.parametrize('name,params,batch_stats,macs', CIFAR_COUNTS)
def test_cifar_form_counts_and_macs(name, params, batch_stats, macs):
  model = create_model(name)
  assert count_params(model, CIFAR) == (params, batch_stats)
  assert count_macs(model, CIFAR) == macs


@pytest.mark.parametrize('name', ['efficientnet_b0', 'mobilenetv3_small', 'nat_m2'])
def test_cifar_form_is_the_imagenet_network_on_the_upsampled_input(name):
  cifar = create_model(name)
  imagenet = create_model(name, stem='imagenet')
  assert count_params(cifar, CIFAR) == count_params(imagenet, IMAGENET)
  assert count_macs(cifar, CIFAR) == count_macs(imagenet, IMAGENET)
  x = jnp.arange(2 * 2 * 3, dtype=jnp.float32).reshape(1, 2, 2, 3)
  up = create_model(name, upsample=3)
  variables = jax.eval_shape(functools.partial(up.init, train=False), jax.random.key(0),
                             jax.ShapeDtypeStruct((1, 2, 2, 3), jnp.float32))
  stem = jax.make_jaxpr(lambda v, x: up.apply(v, x, train=False))(variables, x)
  # The first conv sees a 6x6 input: every pixel repeated 3x3 times.
  convs = [e for e in stem.jaxpr.eqns if e.primitive.name == 'conv_general_dilated']
  assert convs[0].invars[0].aval.shape == (1, 6, 6, 3)


# NAT-M1's net.config (human-analysis/neural-architecture-transfer,
# subnets/cifar10/net-img@224-flops@392-top1@98.2): (kernel, mid, out, stride, SE, act) of its
# 16 blocks; mid 24 on 24 inputs is the unexpanded first block.
NAT_M1_CONFIG = [
    (3, 24, 24, 1, False, 'RE'), (3, 72, 32, 2, False, 'RE'), (3, 96, 32, 1, False, 'RE'),
    (7, 128, 48, 2, True, 'RE'), (7, 288, 48, 1, True, 'RE'), (7, 192, 96, 2, False, 'HS'),
    (7, 384, 96, 1, False, 'HS'), (7, 384, 96, 1, False, 'HS'), (7, 288, 96, 1, False, 'HS'),
    (7, 576, 136, 1, True, 'HS'), (7, 544, 136, 1, True, 'HS'), (7, 816, 136, 1, True, 'HS'),
    (7, 408, 192, 2, True, 'HS'), (7, 768, 192, 1, True, 'HS'), (7, 1152, 192, 1, True, 'HS'),
    (7, 576, 192, 1, True, 'HS')]


def _nat_by_hand(config, stem=24, head=(1152, 1536), num_classes=10, size=112):
  """(params, batch_stats, MACs) of a NATNet from its net.config at 224 px: OFA's layers."""
  params, stats, macs = 27 * stem + 2 * stem, 2 * stem, size * size * 27 * stem
  c = stem
  for k, mid, out, stride, se, _ in config:
    if mid != c:  # expand 1x1 + BN
      params, stats, macs = params + c * mid + 2 * mid, stats + 2 * mid, macs + size**2 * c * mid
    size //= stride
    params, stats = params + k * k * mid + 2 * mid, stats + 2 * mid
    macs += size**2 * k * k * mid
    if se:  # two 1x1 convs with bias on the pooled features
      d = make_divisible(mid // 4)
      params, macs = params + 2 * mid * d + d + mid, macs + 2 * mid * d
    params, stats = params + mid * out + 2 * out, stats + 2 * out
    macs += size**2 * mid * out
    c = out
  params += c * head[0] + 2 * head[0] + head[0] * head[1] + head[1] * num_classes + num_classes
  macs += size**2 * c * head[0] + head[0] * head[1] + head[1] * num_classes
  return params, stats + 2 * head[0], macs


def test_nat_m1_decodes_to_the_published_net_config():
  model = create_model('nat_m1')
  table = [(b.kernel_size, b.hidden, b.features, b.strides, bool(b.se_features), b.act)
           for b in subnet_table(model.ks, model.e, model.d, model.w)]
  assert table == NAT_M1_CONFIG
  params, stats, macs = _nat_by_hand(NAT_M1_CONFIG)
  assert count_params(model, CIFAR) == (params, stats)
  assert count_macs(model, CIFAR) == macs


def test_nat_m2_widths_at_w_1_2():
  table = subnet_table(*(getattr(create_model('nat_m2'), f) for f in ('ks', 'e', 'd', 'w')))
  assert [b.features for b in table] == [24] + [32] * 2 + [48] * 2 + [96] * 4 + [136] * 4 + [
      192] * 4
  assert [b.hidden for b in table[:5]] == [24, 72, 96, 192, 192]  # round(in * e) to 8s


def test_drop_connect_rises_from_zero_over_all_blocks():
  np.testing.assert_allclose(mbconv.drop_connect_survival(4, 0.2), [1.0, 0.95, 0.9, 0.85])


TINY = {
    'efficientnet_b0': dict(width_coefficient=0.25, stages=((1, 3, 1, 16, 1), (6, 5, 2, 24, 2)),
                            upsample=2, drop_connect_rate=0.5),
    'mobilenetv3_large': dict(table=((3, 16, 16, True, 'HS', 1), (5, 32, 24, True, 'RE', 2),
                                     (3, 48, 24, False, 'HS', 1)), head_width=64, upsample=2,
                              drop_connect_rate=0.5),
    'nat_m1': dict(d=(2, 2, 2, 2, 2), ks=(3, 5, 7, 3, 5, 7, 3, 5, 7, 3), e=(3, 4, 6) * 3 + (3,),
                   w=0.5, upsample=1, drop_connect_rate=0.5),
}


@pytest.mark.parametrize('name', TINY)
def test_init_trace_counts_the_eval_forward(name):
  model = create_model(name, **TINY[name])
  shape = (1, 16, 16, 3)
  assert count_macs(model, shape) == eval_forward_macs(model, shape) > 0


def _count(jaxpr, primitive: str) -> int:
  """Equations of `primitive` in a jaxpr, sub-jaxprs (jit, custom_jvp) included."""
  total = 0
  for eqn in jaxpr.eqns:
    total += eqn.primitive.name == primitive
    for param in eqn.params.values():
      for sub in param if isinstance(param, (tuple, list)) else (param,):
        inner = getattr(sub, 'jaxpr', sub)
        if hasattr(inner, 'eqns'):
          total += _count(inner, primitive)
  return total


def test_efficientnet_is_swish_throughout_its_se_included():
  # Stem, head and per block expand (not in the first), depthwise, SE inside, SE gate: every
  # one a sigmoid ('logistic'), as TF's reference, timm and torchvision; 1 + 3 + 4 + 4 + 1.
  model = create_model('efficientnet_b0', **TINY['efficientnet_b0'])
  x = jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(1), x, train=False), x)
  forward = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(variables, x)
  assert _count(forward.jaxpr, 'logistic') == 13


def test_compiled_train_step_uses_drop_path_and_dropout():
  model = create_model('efficientnet_b0', **TINY['efficientnet_b0'])
  x = jax.random.normal(jax.random.key(0), (4, 16, 16, 3))
  labels = jax.nn.one_hot(jnp.arange(4), 10)
  # Filled by numpy: the threefry initialisers cost XLA:CPU more than the step under test.
  state = _numpy_init(model, optax.identity(), x.shape[1:])
  variables = {'params': state.params, 'batch_stats': state.batch_stats}

  @jax.jit
  def loss_and_grad(params, drop_key):
    def loss_fn(params):
      logits, _ = model.apply({'params': params, 'batch_stats': variables['batch_stats']}, x,
                              train=True, mutable=['batch_stats'],
                              rngs={'drop_path': drop_key, 'dropout': jax.random.key(7)})
      return -jnp.mean(jnp.sum(labels * jax.nn.log_softmax(logits), -1))
    return jax.value_and_grad(loss_fn)(params)

  losses = []
  for seed in range(3):
    loss, grads = loss_and_grad(variables['params'], jax.random.key(seed))
    assert np.isfinite(float(loss))
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    losses.append(float(loss))
  assert len(set(losses)) > 1  # the 'drop_path' stream decides which blocks survive
  with pytest.raises(Exception, match='drop_path'):
    model.apply(variables, x, train=True, mutable=['batch_stats'],
                rngs={'dropout': jax.random.key(0)})


@pytest.mark.parametrize('name,overrides,field', [
    ('efficientnet_b0', {'stem': 'imagnet'}, 'stem'),
    ('mobilenetv3_small', {'upsample': 1.5}, 'upsample'),
    ('efficientnet_b0', {'drop_connect_rate': 1.0}, 'drop_connect_rate'),
    ('mobilenetv3_large', {'dropout_rate': -0.1}, 'dropout_rate'),
    ('nat_m1', {'d': (2, 2, 4, 3)}, 'd'),
    ('nat_m1', {'ks': (3,) * 14}, 'ks'),
    ('nat_m2', {'e': (3,) * 15 + (5,)}, 'e'),
])
def test_bad_fields_raise_user_errors(name, overrides, field):
  with pytest.raises(UserError, match=rf'^model\.{field}: '):
    count_params(create_model(name, **overrides), CIFAR)


def test_configs_pick_the_model_and_seed_a_resolution():
  config = load('configs/mobilenetv3.py:small,160px,w2,b512,cutmix')
  assert (config.model.name, config.model.upsample, config.model.width_mult) == (
      'mobilenetv3_small', 5, 2.0)
  assert (config.batch_size, config.mix.name) == (512, 'cutmix')
  assert (config.optim.weight_decay, config.optim.weight_decay_on) == (2.4e-4, 'conv_kernels')
  assert load('configs/mobilenetv3.py').model.name == 'mobilenetv3_large'
  assert load('configs/mobilenetv3.py').model.upsample == 7
  assert load('configs/efficientnet.py:b3').model.name == 'efficientnet_b3'
  assert load('configs/nat.py:m2').model.name == 'nat_m2'
  with pytest.raises(UserError, match=r'^--config configs/mobilenetv3\.py:large,small: choose '
                     r'one of large, small$'):
    load('configs/mobilenetv3.py:large,small')
  with pytest.raises(UserError, match=r'choose one of 128px, 160px, 192px, 224px$'):
    load('configs/mobilenetv3.py:128px,224px')

