"""Several processes: 2 processes x 2 CPU devices on localhost train like 1 process x 4 devices.

The processes talk through `jax.distributed` (gloo collectives on CPU), each feeding its half of
every batch from the host (`data_feed=auto` picks `host` with several processes); the single
process gathers its batches on the devices. Same losses and parameters, to float tolerance.
"""
# pylint: disable=redefined-outer-name  # pytest fixtures

import concurrent.futures
import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from benchmarks import processes
from jaxcls import checkpoint, parallel, train
from jaxcls.errors import UserError
from tests.conftest import tiny_config
from tests.conftest import xla_cache  # pylint: disable=unused-import
from tests.test_faults import CONFIG, reference  # pylint: disable=unused-import

REPO = pathlib.Path(__file__).resolve().parents[1]
# Two steps of 32: 16 images per process, 8 per device.
CONFIG_FILE = '''
from tests.conftest import tiny_config

def get_config():
  return tiny_config(**{'num_epochs': 1, 'dataset.train_split': 'train[:64]',
                        'log_every_steps': 1})
'''
# Two processes of one CPU device all-reduce through jax.distributed: can this machine do it?
PROBE = '''
import sys, jax, numpy as np
jax.config.update('jax_platforms', 'cpu')
jax.distributed.initialize(sys.argv[1], 2, int(sys.argv[2]))
mesh = jax.sharding.Mesh(np.array(jax.devices()), ('d',))
x = jax.make_array_from_process_local_data(
    jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('d')), np.ones(1, np.float32))
assert float(jax.jit(lambda x: x.sum())(x)) == 2.0
'''


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _main(tmp_path, workdir: str, devices: int, *flags: str) -> subprocess.Popen:
  config = tmp_path / 'config.py'
  config.write_text(CONFIG_FILE)
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'PYTHONPATH': str(REPO),
         'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}'}
  log = open(tmp_path / f'{pathlib.Path(workdir).name}-{len(flags)}-{flags[-1:]}.log', 'w')
  return processes.popen([sys.executable, str(REPO / 'main.py'), f'--config={config}',
                         f'--workdir={workdir}', *flags], stdout=log,
                         stderr=subprocess.STDOUT, env=env, cwd=REPO)


def _collectives_unavailable() -> str:
  """Why two CPU processes cannot all-reduce here ('' when they can)."""
  port = _free_port()
  probes = [processes.popen([sys.executable, '-c', PROBE, f'localhost:{port}', str(i)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, 'JAX_PLATFORMS': 'cpu'}) for i in range(2)]
  try:
    outputs = [p.communicate(timeout=120)[0] for p in probes]
  except subprocess.TimeoutExpired:
    return 'two CPU processes did not finish an all-reduce in 120 s'
  finally:
    for p in probes:
      processes.kill_group(p)
  failed = [o for p, o in zip(probes, outputs) if p.returncode]
  return failed[0].strip().splitlines()[-1] if failed else ''


@pytest.mark.slow  # three main.py processes compiling at once: ~4 minutes on 2 busy cores
def test_two_processes_of_two_devices_train_like_one_of_four(tmp_path):
  port = _free_port()
  many, one = tmp_path / 'two_processes', tmp_path / 'one_process'
  running = [_main(tmp_path, str(many), 2, f'--coordinator_address=localhost:{port}',
                  '--num_processes=2', f'--process_id={i}') for i in range(2)]
  running.append(_main(tmp_path, str(one), 4))
  try:
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
      codes = list(pool.map(lambda p: p.wait(timeout=400), running))
  finally:
    for p in running:
      processes.kill_group(p)
  logs = {p.name: p.read_text()[-3000:] for p in tmp_path.glob('*.log')}
  if codes[:2] != [0, 0] and (reason := _collectives_unavailable()):
    pytest.skip(f'CPU collectives (gloo) unavailable: {reason}')
  assert codes == [0, 0, 0], logs
  results = {d: json.loads((d / 'results.json').read_text()) for d in (many, one)}
  assert results[many]['num_processes'] == 2 and results[many]['data_feed'] == 'host'
  assert results[one]['num_processes'] == 1 and results[one]['data_feed'] == 'device'
  assert results[many]['num_devices'] == results[one]['num_devices'] == 4
  for key in ('train_loss', 'test_loss', 'test_accuracy'):
    np.testing.assert_allclose(results[many][key], results[one][key], rtol=1e-5, atol=1e-6)
  # Only process 0 writes TensorBoard summaries; the checkpoint holds every process's part.
  assert len(list(many.glob('events.out.tfevents.*'))) == 1
  for a, b in zip(jax.tree.leaves(checkpoint.load_variables(str(many))),
                  jax.tree.leaves(checkpoint.load_variables(str(one)))):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('env,flags,joins', [
    ({}, (None, None, None), False),
    ({}, ('host0:1234', 2, 0), True),
    ({'JAX_COORDINATOR_ADDRESS': 'host0:1234'}, (None, None, None), True),
    ({'SLURM_STEP_NODELIST': 'node[1-2]', 'SLURM_NTASKS': '1'}, (None, None, None), False),
    ({'SLURM_STEP_NODELIST': 'node[1-2]', 'SLURM_NTASKS': '8'}, (None, None, None), True),
    ({'SLURM_NTASKS': '8'}, (None, None, None), False),  # an allocation, not inside srun
    ({'OMPI_COMM_WORLD_SIZE': '4'}, (None, None, None), True),
])
def test_initialize_distributed_runs_only_for_several_processes(monkeypatch, env, flags, joins):
  for name in ('JAX_COORDINATOR_ADDRESS', 'SLURM_STEP_NODELIST', 'SLURM_NTASKS',
               'OMPI_COMM_WORLD_SIZE'):
    monkeypatch.delenv(name, raising=False)
  for name, value in env.items():
    monkeypatch.setenv(name, value)
  calls = []
  monkeypatch.setattr(jax.distributed, 'initialize', lambda *args: calls.append(args))
  assert parallel.initialize_distributed(*flags) is joins
  assert calls == ([flags] if joins else [])


def test_initialize_distributed_failure_is_one_line(monkeypatch):
  def fail(*args):
    raise ValueError('process_id and num_processes must be nonnegative,\nwith process_id < '
                     'num_processes. Got process_id=5, num_processes=2.')

  monkeypatch.setattr(jax.distributed, 'initialize', fail)
  with pytest.raises(UserError, match=r'^--coordinator_address/--num_processes/--process_id: '
                                      r'cannot start .*Got process_id=5, num_processes=2.\); '
                                      r'give all three flags') as error:
    parallel.initialize_distributed('localhost:1', 2, 5)
  assert '\n' not in str(error.value)


def test_process_rows_cover_the_batch_once_in_order():
  mesh = parallel.make_mesh()
  np.testing.assert_array_equal(parallel.process_rows(mesh, 8), np.arange(8))  # one process
  local = np.arange(3 * 8 * 2).reshape(3, 8, 2)
  array = parallel.put_process_local(local, mesh, 8)
  assert array.shape == (3, 8, 2)
  np.testing.assert_array_equal(np.asarray(array), local)


def test_host_feed_gives_the_device_gather_batches_bit_for_bit(reference, tmp_path):
  """One process, data_feed=host: the batches the processes of a multi-process run would send
  (all rows, here) train exactly like the batches gathered on the device."""
  train.train_and_evaluate(tiny_config(**{**CONFIG, 'data_feed': 'host'}), str(tmp_path))
  for a, b in zip(jax.tree.leaves(checkpoint.load_variables(str(tmp_path))), reference[1]):
    np.testing.assert_array_equal(np.asarray(a), b)
