"""Tests for `jaxcls.report`: seed A's formats, rows from configs and workdirs, CSV, matching a
config to a run, learning-curve plots and the generated docs/RESULTS.md."""

import json
import os
import pathlib

import pytest

from jaxcls import report
from jaxcls.errors import UserError
from tests.conftest import run_python, tiny_config

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
  monkeypatch.chdir(REPO)  # targets are written relative to the repository root


def _workdir(path: pathlib.Path, config, results=None) -> str:
  path.mkdir(parents=True)
  (path / 'config.json').write_text(config.to_json_best_effort(indent=2))
  if results is not None:
    (path / 'results.json').write_text(json.dumps(results))
  return str(path)


# --- Formats.

@pytest.mark.parametrize('fn,value,text', [
    (report.format_count, 1309210, '1,309,210'),
    (report.format_count, 873722, '873,722'),
    (report.format_macs, 74_109_952, '74.11M'),
    (report.format_macs, 609_964_000, '609.96M'),
    (report.format_macs, 3_908_224, '3.91M'),
    (report.format_percent, 0.95564, '95.56%'),
    (report.format_percent, 0.9318, '93.18%'),
    (report.format_rate, 2171.4, '2,171'),
])
def test_seed_a_formats(fn, value, text):
  assert fn(value) == text


@pytest.mark.parametrize('fn', [report.format_count, report.format_macs, report.format_percent,
                                report.format_rate])
def test_missing_values_are_a_dash(fn):
  assert fn(None) == '–'


# --- Tables.

def test_resnet50b_config_shows_seed_a_params_and_flops(capsys):
  assert report.main(['configs/resnet50b.py']) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == '| Model | Top-1 | Error | Params | FLOPs/2 | Train img/s |'
  assert lines[2] == '| resnet50b | – | – | 1,309,210 | 74.11M | – |'


def test_total_adds_the_keras_count_and_variants_label_the_row(capsys):
  report.main(['--total', 'configs/resnet50b.py:sd,htd'])
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].endswith('| Params + BN stats |')
  assert lines[2] == '| resnet50b +sd +htd | – | – | 1,309,210 | 74.11M | – | 1,320,570 |'


def test_workdir_row_reads_results_and_computes_counts_from_its_config(tmp_path):
  config = tiny_config()
  workdir = _workdir(tmp_path / 'tiny', config,
                     {'test_accuracy': 0.95564, 'train_images_per_sec': 2171.4})
  row = report.row_from_target(workdir)
  facts = report.config_facts(config)
  assert row.cells() == ['tiny (resnet18 (modified: stage_sizes=(1, 1, 1, 1), base_width=4, stem_width=4, convention=torch))', '95.56%', '4.44%', f'{facts.params:,}',
                         report.format_macs(facts.macs), '2,171']
  # Digits are 32x32x1: the stem has one input channel.
  assert facts.params == report.model_facts('resnet18', report.model_overrides(config),
                                            (32, 32, 1), 10).params


def test_a_run_with_a_modified_model_says_so_and_counts_its_own_params(tmp_path):
  """shake26_96d narrowed to base width 16 is not the published 26,330,026-param network."""
  config = report.load_config('configs/shake26_96d.py')
  config.model.base_width = 16
  workdir = _workdir(tmp_path / 'narrow', config, {'test_accuracy': 0.9})
  row = report.row_from_target(workdir)
  assert row.cells()[0] == 'narrow (shake_shake26_2x96d (modified: base_width=16))'
  assert row.cells()[3] == '735,226'
  assert report.run_label(config) == 'shake_shake26_2x96d (modified: base_width=16)'
  assert report.run_label(report.load_config('configs/shake26_96d.py')) == 'shake_shake26_2x96d'
  config.model.dtype = 'bfloat16'  # precision is not architecture
  config.model.base_width = 96
  assert report.run_label(json.loads(config.to_json())) == 'shake_shake26_2x96d'


@pytest.mark.parametrize('target,label', [
    ('configs/quickstart.py',
     'resnet18 (modified: stage_sizes=(1, 1, 1, 1), base_width=8, stem_width=8)'),
    ('configs/resnet50b.py:sd,mish', 'resnet50b (modified: activation=mish, survival_prob=0.7)'),
    ('configs/mobilenetv2.py', 'mobilenetv2'),
])
def test_run_label_names_the_fields_that_differ_from_the_preset(target, label):
  assert report.run_label(report.load_config(target)) == label


def test_unfinished_workdir_shows_dashes(tmp_path):
  row = report.row_from_target(_workdir(tmp_path / 'running', tiny_config()))
  assert row.cells()[1:3] == ['–', '–'] and row.cells()[5] == '–'


def test_input_shape_and_classes_come_from_the_dataset_name():
  config = report.load_config('configs/resnet18.py:fmnist')
  assert report.input_spec(config) == ((28, 28, 1), 10)
  config.dataset.name = 'cifar100'
  assert report.input_spec(config) == ((32, 32, 3), 100)
  config.dataset.num_classes = 20
  assert report.input_spec(config)[1] == 20


def test_csv_has_plain_numbers(tmp_path):
  out = tmp_path / 'table.csv'
  report.main(['--csv', '--out', str(out), 'configs/resnet50b.py'])
  assert out.read_text().splitlines() == [
      'model,top1_percent,error_percent,params,macs,train_images_per_sec',
      'resnet50b,,,1309210,74109952,',
  ]


def test_config_target_takes_numbers_from_a_matching_run_only(tmp_path, capsys):
  config = report.load_config('configs/quickstart.py')
  # Where the data lives and how often the loop logs do not make another experiment...
  config.log_every_steps = 7
  config.dataset.cache_dir = '/elsewhere'
  _workdir(tmp_path / 'runs' / 'same', config,
           {'test_accuracy': 0.97, 'train_images_per_sec': 1000.0})
  # ...another learning rate does.
  other = report.load_config('configs/quickstart.py')
  other.optim.lr = 0.3
  _workdir(tmp_path / 'runs' / 'other', other,
           {'test_accuracy': 0.5, 'train_images_per_sec': 5.0})
  report.main(['--runs', str(tmp_path / 'runs'), 'configs/quickstart.py',
               'configs/quickstart.py'])
  rows = capsys.readouterr().out.splitlines()[2:]
  assert all('| 97.00% | 3.00% |' in r and r.endswith('| 1,000 |') for r in rows)
  assert not report.same_experiment(config, other)


def test_bad_targets_are_one_line_user_errors(tmp_path):
  with pytest.raises(UserError, match=r"^target 'configs/nope\.py': no such config file"):
    report.main(['configs/nope.py'])
  (tmp_path / 'empty').mkdir()
  with pytest.raises(UserError, match=r'config\.json'):
    report.main([str(tmp_path / 'empty')])
  result = run_python('-m', 'jaxcls.report', 'configs/nope.py')
  assert result.returncode == 2
  assert result.stderr.startswith("error: target 'configs/nope.py'")
  assert len(result.stderr.strip().splitlines()) == 1


# --- Plot.

def test_plot_has_one_labelled_line_per_run_by_epoch_and_by_session_time(tmp_path):
  from clu import metric_writers  # pylint: disable=g-import-not-at-top

  workdirs = []
  for name, accuracies in (('a', [0.5, 0.7, 0.8]), ('b', [0.4, 0.6, 0.9])):
    workdir = _workdir(tmp_path / name, tiny_config())
    # Two sessions, as a resumed run writes them: one event file each.
    for session in (accuracies[:2], accuracies[2:]):
      writer = metric_writers.create_default_writer(workdir)
      for accuracy in session:
        step = 10 * (accuracies.index(accuracy) + 1)
        writer.write_scalars(step, {'eval_accuracy': accuracy, 'epoch': step / 10})
      writer.flush()
      writer.close()
    workdirs.append(workdir)

  scalars = report.read_scalars(workdirs[0], ('eval_accuracy', 'epoch'))
  assert [(s, round(v, 3)) for s, _, v in scalars['eval_accuracy']] == [
      (10, 0.5), (20, 0.7), (30, 0.8)]
  seconds = [t for _, t, _ in scalars['eval_accuracy']]
  assert seconds == sorted(seconds) and seconds[-1] < 60  # no gap between the sessions
  path = tmp_path / 'curves.png'
  assert report.plot_runs(workdirs, str(path)) == [f'{name} (resnet18 (modified: stage_sizes=(1, 1, 1, 1), base_width=4, stem_width=4, convention=torch))' for name in 'ab']
  assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


# --- Records and docs/RESULTS.md.

def test_record_run_stores_results_config_and_provenance(tmp_path):
  config = tiny_config()
  workdir = _workdir(tmp_path / 'w', config, {'test_accuracy': 0.9, 'epoch': 2})
  path = report.record_run(workdir, 'tiny', 'python main.py --config x', 'a note',
                           runs_dir=str(tmp_path / 'runs'))
  record = json.loads(pathlib.Path(path).read_text())
  assert record['kind'] == 'run' and record['name'] == 'tiny'
  assert record['command'] == 'python main.py --config x' and record['notes'] == 'a note'
  assert record['hardware'].startswith('CPU: ') and record['date'].count('-') == 2
  assert record['results']['test_accuracy'] == 0.9
  assert record['config']['model']['name'] == 'resnet18'
  with pytest.raises(UserError, match='no results.json'):
    report.record_run(_workdir(tmp_path / 'unfinished', config), 'x', 'cmd',
                      runs_dir=str(tmp_path / 'runs'))


def test_load_note_only_when_others_use_the_cpu():
  assert report.load_note(0.1) == ''
  assert report.load_note(1.6).startswith('shared with other jobs (about 1.6 of ')
  busy = report.busy_cores(0.05)
  assert busy is None or 0.0 <= busy <= os.cpu_count()


def test_results_doc_fills_seed_rows_from_matching_records_and_lists_benchmarks(tmp_path):
  runs = tmp_path / 'runs'
  config = report.load_config('configs/resnet50b.py:sd,htd,cutmix')
  config.dataset.source = 'folder'  # the same recipe on the offline copy
  report.write_record({
      'kind': 'run', 'name': 'r50b', 'command': 'python main.py --config '
      'configs/resnet50b.py:sd,htd,cutmix', 'hardware': 'GPU X', 'date': '2026-11-22',
      'notes': '', 'config': json.loads(config.to_json_best_effort()),
      'results': {'test_accuracy': 0.9556, 'train_images_per_sec': 2247.0, 'epoch': 150,
                  'model': 'resnet50b', 'dataset': 'cifar10', 'wall_time_s': 600.0}},
                      'r50b', str(runs))
  report.write_record({
      'kind': 'throughput', 'name': 'bench-t', 'command': 'python benchmarks/throughput.py',
      'hardware': 'CPU: test', 'date': '2026-11-22', 'notes': 'shared with other jobs',
      'config': 'configs/resnet50b.py', 'batch_size': 128, 'dtype': 'bfloat16',
      'images_per_sec': 77.4, 'compile_s': 9.5, 'mfu': None, 'device': 'cpu'}, 'bench-t',
                      str(runs))
  report.write_record({
      'kind': 'kill_resume', 'name': 'bench-k', 'command': 'python benchmarks/kill_resume.py',
      'hardware': 'CPU: test', 'date': '2026-11-22', 'notes': '', 'kills': 20,
      'identical': 19, 'steps': 32, 'reference_repeatable': True, 'resumed_from': {'0': 20},
      'partial_checkpoint_writes': 3, 'seconds': 600.4}, 'bench-k', str(runs))
  rows = [('ResNet50b +SD +HTD +CutMix', 'configs/resnet50b.py:sd,htd,cutmix', 95.56, 2247),
          ('ResNet50b +HTD', 'configs/resnet50b.py:htd', 93.65, 2171),
          ('ResNet34', 'configs/no_such_recipe.py', 92.64, 4160)]
  doc = report.results_doc(str(runs), seed_a_rows=rows, seed_b_rows=(),
                           counts=lambda: '| zoo table |')
  assert doc.startswith('# Results\n')
  assert '| `bench-k` | 20 | 19 | 32 | yes | 3 | 600 | 2026-11-22 |' in doc
  assert doc.endswith('are in docs/ZOO.md.\n\n| zoo table |\n')
  assert report.REGENERATE in doc
  assert ('| ResNet50b +SD +HTD +CutMix [r50b, folder data] | 95.56% | 4.44% | 1,309,210 '
          '| 74.11M | 2,247 | 1,320,570 | 95.56% | 2,247 |') in doc
  assert ('| ResNet50b +HTD | – | – | 1,309,210 | 74.11M | – | 1,320,570 | 93.65% | 2,171 |'
          in doc)
  assert ('`configs/no_such_recipe.py` (ResNet34) is not in configs/ yet, and no model '
          '`no_such_recipe` is registered yet.') in doc
  assert '| `bench-t` | configs/resnet50b.py | 128 | bfloat16 | 77 | 9.5 |' in doc
  assert ('- `bench-t`: `python benchmarks/throughput.py` on CPU: test, 2026-11-22. shared '
          'with other jobs.') in doc
  assert '- `r50b`: `python main.py --config configs/resnet50b.py:sd,htd,cutmix` on GPU X' in doc


def test_results_doc_rejects_a_record_without_provenance(tmp_path):
  report.write_record({'kind': 'run', 'command': 'x', 'date': '2026-11-22'}, 'bad',
                      str(tmp_path))
  with pytest.raises(UserError, match=r"bad\.json: a record needs 'hardware'"):
    report.results_doc(str(tmp_path), seed_a_rows=(), seed_b_rows=())
