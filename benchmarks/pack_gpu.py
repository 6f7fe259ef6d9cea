r"""What a GPU machine with no network needs beyond its image, packed to fit its transfers.

    python benchmarks/pack_gpu.py [--data ../shared/data] [--out .gpu] [--also PKG==VERSION]
    python benchmarks/pack_gpu.py --unpack        # on the GPU machine, from the repository root

Here (with PyPI reachable) it writes, under `--out` (ignored by git):
- `wheels/`: the wheels the GPU image lacks, for CPython 3.12 on x86-64: ml-collections and
  clu (pure Python; every other package they need is in the image), plus any `--also`.
- `send1/` (and `send2/`, ... if one is not enough): `cifar10-jpeg.tar.gz`, the 60,000 JPEGs
  of `cifar10-jpeg.zip` in one gzip stream (about 18.5 MiB instead of 61.8: the images share
  their JPEG headers, which a zip compresses one file at a time) and `fashion_mnist/`, the idx
  .gz files as they are (27 MiB).
It measures what each call of the device tool would send, the repository included (tracked and
untracked-not-ignored files), against its 64 MiB limit, and prints each call's `carry` list.

There, `--unpack` extracts every `send*/` into `--out`/data (`cifar10-jpeg/`, `fashion_mnist/`),
which stays on the machine between calls, and checks the image's packages against
pyproject.toml's minimums (one line: what is there, what is missing or too old).
"""

import argparse
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from typing import Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = 64 * 2**20  # the device tool's transfer: repository + carried paths
MARGIN = 4 * 2**20  # for the repository growing between packing and sending
WHEELS = ('ml-collections==1.1.0', 'clu==0.0.12')
# pip matches each manylinux tag exactly; pure-Python wheels match any.
PLATFORMS = ('manylinux_2_28_x86_64', 'manylinux_2_17_x86_64', 'manylinux2014_x86_64')
# Needed only by dataset.source='tfds', which the GPU image cannot serve.
OPTIONAL = ('tensorflow-cpu', 'tensorflow-datasets', 'importlib_resources', 'matplotlib')


def download_wheels(directory: str, extra: tuple[str, ...] = ()) -> list[str]:
  os.makedirs(directory, exist_ok=True)
  command = [sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps',
             '--only-binary=:all:', '--python-version', '3.12', '--implementation', 'cp',
             *[f'--platform={p}' for p in PLATFORMS], '--dest', directory, *WHEELS, *extra]
  subprocess.run(command, check=True)
  return sorted(os.listdir(directory))


def pack_cifar(zip_path: str, out_path: str) -> int:
  """The zip's files (`cifar10-jpeg/{train,test}/<class>/NNNN.jpg`) as one tar.gz; its size."""
  with zipfile.ZipFile(zip_path) as archive, open(out_path + '.tmp', 'wb') as raw, \
      gzip.GzipFile(fileobj=raw, mode='wb', compresslevel=6, mtime=0) as stream, \
      tarfile.open(fileobj=stream, mode='w', format=tarfile.USTAR_FORMAT) as tar:
    for info in archive.infolist():
      if info.is_dir():
        continue
      data = archive.read(info)
      member = tarfile.TarInfo(info.filename)
      member.size = len(data)
      tar.addfile(member, io.BytesIO(data))
  os.replace(out_path + '.tmp', out_path)
  return os.path.getsize(out_path)


def repository_size() -> int:
  """Bytes the device tool sends of the repository: tracked and untracked-not-ignored files."""
  names = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                         cwd=REPO, check=True, capture_output=True).stdout.split(b'\0')
  paths = (os.path.join(REPO, n.decode()) for n in names if n)
  return sum(os.path.getsize(p) for p in paths if os.path.isfile(p))


def folder_size(path: str) -> int:
  """Bytes of a file, or of every file under a folder."""
  if os.path.isfile(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def plan_transfers(items: dict[str, int], room: int) -> list[list[str]]:
  """First fit, largest first: groups of `items` (name -> bytes) of at most `room` bytes each.

  Raises ValueError when one item alone does not fit.
  """
  groups: list[tuple[int, list[str]]] = []
  for name, size in sorted(items.items(), key=lambda kv: -kv[1]):
    if size > room:
      raise ValueError(f'{name} ({size / 2**20:.1f} MiB) alone exceeds the {room / 2**20:.1f} '
                       'MiB a transfer has room for')
    for i, (used, names) in enumerate(groups):
      if used + size <= room:
        groups[i] = (used + size, names + [name])
        break
    else:
      groups.append((size, [name]))
  return [names for _, names in groups]


def pack(data: str, out: str, extra: tuple[str, ...] = ()) -> dict:
  """Wheels and data laid out in transfer folders under `out`; returns the plan."""
  staging = os.path.join(out, 'staging')
  os.makedirs(staging, exist_ok=True)
  wheels = download_wheels(os.path.join(out, 'wheels'), extra)
  items = {}
  cifar = os.path.join(data, 'cifar10-jpeg.zip')
  if os.path.isfile(cifar):
    pack_cifar(cifar, os.path.join(staging, 'cifar10-jpeg.tar.gz'))
    items['cifar10-jpeg.tar.gz'] = folder_size(os.path.join(staging, 'cifar10-jpeg.tar.gz'))
  fashion = os.path.join(data, 'fashion_mnist')
  if os.path.isdir(fashion):
    shutil.copytree(fashion, os.path.join(staging, 'fashion_mnist'), dirs_exist_ok=True)
    items['fashion_mnist'] = folder_size(fashion)
  repo, wheel_bytes = repository_size(), folder_size(os.path.join(out, 'wheels'))
  room = LIMIT - MARGIN - repo - wheel_bytes
  for old in os.listdir(out):
    if old.startswith('send'):
      shutil.rmtree(os.path.join(out, old))
  calls = []
  for i, names in enumerate(plan_transfers(items, room), 1):
    folder = os.path.join(out, f'send{i}')
    os.makedirs(folder)
    for name in names:
      os.replace(os.path.join(staging, name), os.path.join(folder, name))
    rel = os.path.relpath(out, REPO)
    calls.append({'carry': [f'{rel}/wheels', f'{rel}/send{i}'], 'items': names,
                  'mib': round((repo + wheel_bytes + sum(items[n] for n in names)) / 2**20, 1)})
  shutil.rmtree(staging)
  return {'repository_mib': round(repo / 2**20, 2), 'wheels': wheels,
          'wheels_mib': round(wheel_bytes / 2**20, 2),
          'items_mib': {k: round(v / 2**20, 1) for k, v in items.items()},
          'limit_mib': LIMIT / 2**20, 'calls': calls}


def unpack(out: str) -> dict:
  """Extracts every `send*/` under `out` into `out/data`; skips what is already there."""
  target = os.path.join(out, 'data')
  os.makedirs(target, exist_ok=True)
  done = []
  for folder in sorted(f for f in os.listdir(out) if f.startswith('send')):
    for name in sorted(os.listdir(os.path.join(out, folder))):
      path = os.path.join(out, folder, name)
      if name.endswith('.tar.gz'):
        stem = name[:-len('.tar.gz')]
        if not os.path.isdir(os.path.join(target, stem)):
          with tarfile.open(path, 'r:gz') as tar:
            tar.extractall(target, filter='data')
      elif os.path.isdir(path):
        shutil.copytree(path, os.path.join(target, name), dirs_exist_ok=True)
      done.append(name)
  return {'unpacked': done, 'data': sorted(os.listdir(target)), 'packages': check_packages()}


def check_packages() -> str:
  """One line: pyproject.toml's requirements that the running Python lacks or has too old."""
  import tomllib  # pylint: disable=g-import-not-at-top
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  from packaging.requirements import Requirement  # pylint: disable=g-import-not-at-top

  with open(os.path.join(REPO, 'pyproject.toml'), 'rb') as f:
    requirements = [Requirement(r) for r in tomllib.load(f)['project']['dependencies']]
  problems = []
  for requirement in requirements:
    if requirement.name in OPTIONAL:
      continue
    try:
      version = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
      problems.append(f'{requirement.name} missing')
      continue
    if version not in requirement.specifier:
      problems.append(f'{requirement.name} {version} (need {requirement.specifier})')
  if not problems:
    return 'packages: everything jaxcls needs is installed'
  return ('packages: ' + '; '.join(problems) + ' -- carry wheels for them: '
          'python benchmarks/pack_gpu.py --also NAME==VERSION')


def main(argv: Optional[list[str]] = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--out', default=os.path.join(REPO, '.gpu'),
                      help='the folder to fill (default .gpu, ignored by git)')
  parser.add_argument('--data', default=os.environ.get('JAXCLS_SHARED_DATA')
                      or os.path.join(REPO, '..', 'shared', 'data'),
                      help='cifar10-jpeg.zip and fashion_mnist/ (default $JAXCLS_SHARED_DATA, '
                      'else ../shared/data)')
  parser.add_argument('--also', action='append', default=[], metavar='PKG==VERSION',
                      help='another wheel to carry (a package the image has too old)')
  parser.add_argument('--unpack', action='store_true', help='on the GPU machine: unpack')
  args = parser.parse_args(argv)
  result = unpack(args.out) if args.unpack else pack(args.data, args.out, tuple(args.also))
  print(json.dumps(result, indent=2))
  return result


if __name__ == '__main__':
  main()
