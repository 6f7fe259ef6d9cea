"""The run's writer and progress line (`jaxcls.logs`): event files, ETA arithmetic, notices."""

import logging
import sys

import jax
import jax.numpy as jnp
import pytest

from jaxcls import logs, report


class FakeClock:
  """Seconds that move only when told to."""

  def __init__(self):
    self.now = 1000.0

  def __call__(self) -> float:
    return self.now

  def advance(self, seconds: float) -> None:
    self.now += seconds


def progress(clock, **kwargs):
  kwargs = {'every_secs': 10.0, 'cadence': {'eval': 100, 'checkpoint': 250},
            'platform': 'gpu', 'clock': clock, **kwargs}
  return logs.Progress(1000, 100, **kwargs)


class Logged:
  """What jaxcls logged (through absl) since the test began."""

  def __init__(self, caplog):
    self._caplog = caplog

  def records(self, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in self._caplog.records
            if r.name == 'absl' and r.levelno == level]

  @property
  def messages(self) -> list[str]:
    return self.records()


@pytest.fixture
def info_logs(caplog):
  caplog.set_level(logging.INFO)
  return Logged(caplog)


# --- Event files.

def test_event_file_holds_the_scalars_of_each_session(tmp_path):
  for session in ({10: 0.5, 20: 0.7}, {30: 0.8}):  # a resumed run: one file per session
    writer = logs.EventWriter(str(tmp_path))
    for step, accuracy in session.items():
      writer.write_scalars(step, {'eval_accuracy': accuracy, 'epoch': step / 10})
    writer.close()
  files = sorted(tmp_path.glob('events.out.tfevents.*'))
  assert len(files) == 2
  scalars = report.read_scalars(str(tmp_path), ('eval_accuracy', 'epoch'))
  assert [(s, round(v, 4)) for s, _, v in scalars['eval_accuracy']] == [
      (10, 0.5), (20, 0.7), (30, 0.8)]
  assert [v for _, _, v in scalars['epoch']] == [1.0, 2.0, 3.0]


def test_events_are_on_disk_before_close(tmp_path):
  writer = logs.EventWriter(str(tmp_path))  # a run killed with -9 never closes it
  writer.write_scalars(4, {'train_loss': 2.5})
  assert report.read_scalars(str(tmp_path), ('train_loss',))['train_loss'][0][::2] == (4, 2.5)
  writer.close()


def test_writer_logs_sorted_scalars_and_writes_events_on_the_main_process_only(
    tmp_path, info_logs):
  logs.create_writer(str(tmp_path / 'other'), is_main=False).write_scalars(2, {'b': 1, 'a': 2})
  assert '[2] a=2, b=1' in info_logs.messages
  assert not (tmp_path / 'other').exists()
  writer = logs.create_writer(str(tmp_path / 'main'), is_main=True)
  writer.write_scalars(3, {'learning_rate': 0.1})
  writer.close()
  assert len(list((tmp_path / 'main').glob('events.out.tfevents.*'))) == 1


def test_notice_names_what_is_missing_and_what_it_costs(monkeypatch, tmp_path, info_logs):
  monkeypatch.setitem(sys.modules, 'tensorflow', None)
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)
  assert logs.missing_libraries() == (
      "Not installed: tensorflow, tensorflow_datasets; unavailable without them: "
      "dataset.source='tfds'. Everything else works.")
  logs.create_writer(str(tmp_path), is_main=True).close()
  assert logs.missing_libraries() in info_logs.messages
  monkeypatch.setitem(sys.modules, 'tensorboard', None)
  assert 'tensorboard' in logs.missing_libraries()
  writer = logs.create_writer(str(tmp_path / 'no-tb'), is_main=True)
  assert writer.events is None and not (tmp_path / 'no-tb').exists()


# --- The arithmetic.

@pytest.mark.parametrize('seconds, text', [(0, '0s'), (42.4, '42s'), (200, '3m 20s'),
                                           (7500, '2h 05m'), (3 * 86400 + 4 * 3600, '3d 4h')])
def test_format_duration(seconds, text):
  assert logs.format_duration(seconds) == text


@pytest.mark.parametrize('every, step, left', [
    (100, 1, 10), (100, 100, 10), (100, 101, 9), (100, 1000, 1), (250, 1, 4),
    (300, 1, 4),  # 300, 600, 900 and the last step
    (300, 901, 1), (0, 5, 1), (0, 1000, 1), (100, 1001, 0)])
def test_points_left_counts_the_stops_still_due_including_the_last(every, step, left):
  assert logs.points_left(every, step, 1000) == left


def test_eta_counts_the_evaluations_and_checkpoints_still_due():
  clock = FakeClock()
  p = progress(clock)
  clock.advance(1.0)  # set-up before the first step: training time
  with p.timed('eval'):
    clock.advance(6.0)
  with p.timed('checkpoint'):
    clock.advance(2.0)
  clock.advance(99.0)  # 100 steps in 100 s of training
  rate = p.steps_per_sec(100, clock())
  assert rate == pytest.approx(1.0)
  total, parts, untimed = p.eta(100, rate)
  # 900 steps; evaluations due at 100, 200, ..., 1000; checkpoints at 250, 500, 750, 1000.
  assert parts == {'train': 900.0, '10 evals': 60.0, '4 checkpoints': 8.0}
  assert total == 968.0 and untimed == []


def test_at_the_last_step_the_eta_is_the_final_evaluation_and_checkpoint():
  clock = FakeClock()
  p = progress(clock)
  with p.timed('eval'):
    clock.advance(30.0)
  with p.timed('checkpoint'):
    clock.advance(5.0)
  clock.advance(100.0)
  line = p(1000)  # the last step always gets its line
  assert line == ('step 1,000/1,000 (100.0%, epoch 10.0), 10 steps/s, ETA 35s '
                  '(train 0s, 1 eval 30s, 1 checkpoint 5s)')


def test_kinds_not_yet_timed_are_named_not_guessed():
  clock = FakeClock()
  p = progress(clock)
  clock.advance(50.0)
  total, parts, untimed = p.eta(50, p.steps_per_sec(50, clock()))
  assert parts == {'train': 950.0} and total == 950.0 and untimed == ['eval', 'checkpoint']
  assert p.line(50, 1.0).endswith('ETA 15m 50s (train 15m 50s, eval not yet timed, '
                                  'checkpoint not yet timed)')


def test_lines_come_every_every_secs(info_logs):
  clock = FakeClock()
  p = progress(clock)
  clock.advance(5.0)
  assert p(10) is None
  clock.advance(5.0)
  assert p(20).startswith('step 20/1,000 (2.0%, epoch 0.2), 2 steps/s, ETA ')
  clock.advance(9.0)
  assert p(30) is None
  assert [m for m in info_logs.messages if m.startswith('step ')] == [
      p.line(20, 2.0)]


def test_first_call_logs_the_compile_and_the_first_step_before_any_line(info_logs, monkeypatch):
  clock = FakeClock()
  p = progress(clock, start_step=200)

  def train_fn(x):  # compiles for 40 s, then dispatches
    clock.advance(40.0)
    return x + 1

  def block_until_ready(x):  # the 2 steps of the first call run for 3 s
    clock.advance(3.0)
    return x

  monkeypatch.setattr(jax, 'block_until_ready', block_until_ready)
  wrapped = p.first_call(train_fn, steps_per_call=2)
  assert wrapped(jnp.zeros(())) == 1
  assert info_logs.messages == [
      'Compiling the train step (2 steps per call)...', 'Compiled in 40.0 s.',
      'First step: 1.50 s; at that pace an epoch takes 2m 30s and the 800 steps left 20m 00s '
      '(evaluations and checkpoints apart).']
  # The first call is neither training time nor training steps.
  clock.advance(10.0)
  assert p.steps_per_sec(212, clock()) == pytest.approx(1.0)
  assert wrapped(jnp.zeros(())) == 1  # later calls pass through, unlogged
  assert len(info_logs.messages) == 3


def test_first_step_predicts_the_epoch_and_the_run(info_logs):
  p = progress(FakeClock(), start_step=100)
  p.first_steps_done(compile_s=40.0, run_s=2.5, steps=1)
  assert info_logs.messages == [
      'First step: 2.50 s; at that pace an epoch takes 4m 10s and the 900 steps left 37m 30s '
      '(evaluations and checkpoints apart).']
  assert p.steps_per_sec(101, p._clock()) == pytest.approx(0.4)  # the first step's rate


def test_cpu_warning_names_the_expected_gpu_time(info_logs):
  p = progress(FakeClock(), platform='cpu', expected_gpu_hours=0.5)
  p.first_steps_done(compile_s=60.0, run_s=20.0, steps=1)  # 1000 steps: 5h 33m
  assert info_logs.records(logging.WARNING) == [
      'On this CPU the run would take about 5h 33m; the config expects about 0.5 h on one GPU '
      '(config.expected_gpu_hours). Stop it with Ctrl-C (it saves a checkpoint) and run it on a '
      'GPU: docs/GPU.md.']
  assert progress(FakeClock(), platform='cpu').cpu_warning(3 * 3600 - 1) is None
  assert progress(FakeClock(), platform='gpu').cpu_warning(100 * 3600) is None
  assert 'expected_gpu_hours' not in progress(FakeClock(), platform='cpu').cpu_warning(4 * 3600)
