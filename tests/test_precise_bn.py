"""jaxcls.precise_bn: the recomputed statistics are the direct averages of the batch statistics."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from configs import quickstart
from jaxcls import precise_bn, train
from jaxcls.report import curves
from jaxcls.train import Batch


class Net(nn.Module):
  momentum: float = 0.99

  @nn.compact
  def __call__(self, x, train: bool):
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=self.momentum)
    x = norm()(x)
    x = nn.Dense(5)(x)
    x = nn.relu(norm()(x))
    x = nn.Dropout(0.5, deterministic=not train)(x)
    return nn.Dense(3)(x)


def _batches(n=4, batch=16):
  rng = np.random.default_rng(0)
  return rng.normal(2.0, 3.0, (n, batch, 2, 2, 4)).astype(np.float32)


def test_recomputed_statistics_are_direct_averages_over_the_batches():
  batches = _batches()
  model = Net()
  variables = model.init(jax.random.key(0), batches[0], train=False)
  rngs_fn = lambda step, k: {'augment': jax.random.key(0),
                             'dropout': jax.random.fold_in(jax.random.key(1), k)}
  read = lambda step, k, images: Batch(images[k], None, None, None)
  augment = lambda key, images, index, epoch: images
  accumulate = jax.jit(precise_bn.make_accumulate_fn(model, augment, read, rngs_fn))
  got = precise_bn.recompute(accumulate, variables, 0, len(batches), jnp.asarray(batches))

  # The first BN sees the inputs themselves: mean and biased variance over (N, H, W), averaged.
  flat = batches.reshape(len(batches), -1, 4).astype(np.float64)
  np.testing.assert_allclose(got['BatchNorm_0']['mean'], flat.mean(1).mean(0), rtol=1e-6)
  np.testing.assert_allclose(got['BatchNorm_0']['var'], flat.var(1).mean(0), rtol=1e-5)
  # Every layer: the average of what a momentum-0 twin of the net stores after each batch.
  twin = Net(momentum=0.0)
  direct = [twin.apply(variables, jnp.asarray(b), train=True, mutable=['batch_stats'],
                       rngs={'dropout': jax.random.fold_in(jax.random.key(1), k)})[1]
            for k, b in enumerate(batches)]
  for path, leaf in jax.tree_util.tree_flatten_with_path(got)[0]:
    mean = np.mean([np.asarray(_at(d['batch_stats'], path)) for d in direct], axis=0)
    np.testing.assert_allclose(leaf, mean, rtol=1e-6, atol=1e-7, err_msg=str(path))
  # The running averages the net holds are untouched, and differ from the recomputed ones.
  assert float(jnp.abs(variables['batch_stats']['BatchNorm_0']['mean']).max()) == 0.0
  assert float(jnp.abs(got['BatchNorm_0']['mean']).min()) > 1.0


def _at(tree, path):
  for key in path:
    tree = tree[key.key]
  return tree


def test_two_epoch_quickstart_evaluates_near_its_train_accuracy(tmp_path):
  """Issue 10: with BN momentum 0.99 the running statistics of a 2-epoch run are still near
  their init (test accuracy ~10% at ~89% train); the quickstart's precise BN closes the gap.
  Train accuracy is the last logged one (the last 11 steps, augmented): 91.1% against 94.4%."""
  config = quickstart.get_config()
  config.num_epochs = 2
  train.train_and_evaluate(config, str(tmp_path))
  test_accuracy = json.loads((tmp_path / 'results.json').read_text())['test_accuracy']
  train_accuracy = curves.read_scalars(str(tmp_path), ('train_accuracy',))['train_accuracy'][-1][2]
  assert train_accuracy > 0.5, train_accuracy  # it trained: the gap below means something
  assert abs(test_accuracy - train_accuracy) <= 0.05, (test_accuracy, train_accuracy)
