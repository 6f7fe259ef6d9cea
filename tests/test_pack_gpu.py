"""Packing for a GPU machine with no network (`benchmarks/pack_gpu.py`), without the network."""

import zipfile

import pytest

from benchmarks import pack_gpu


def test_transfers_are_filled_largest_first_and_never_overflow():
  assert pack_gpu.plan_transfers({'cifar': 50, 'fashion': 30, 'wheels': 20}, 60) == [
      ['cifar'], ['fashion', 'wheels']]
  assert pack_gpu.plan_transfers({'cifar': 18, 'fashion': 27}, 60) == [['fashion', 'cifar']]
  with pytest.raises(ValueError, match=r'^big \(0.0 MiB\) alone exceeds'):
    pack_gpu.plan_transfers({'big': 61}, 60)


def test_cifar_zip_round_trips_through_the_tar_gz_and_unpack(tmp_path):
  images = {f'cifar10-jpeg/{split}/{name}/{i:04d}.jpg': bytes([i, len(name)]) * 300
            for split in ('train', 'test') for name in ('cat', 'dog') for i in range(3)}
  source = tmp_path / 'cifar10-jpeg.zip'
  with zipfile.ZipFile(source, 'w') as archive:
    archive.writestr('cifar10-jpeg/', b'')  # directory entries are skipped
    for name, data in images.items():
      archive.writestr(name, data)
  out = tmp_path / '.gpu'
  (out / 'send1' / 'fashion_mnist').mkdir(parents=True)
  (out / 'send1' / 'fashion_mnist' / 't10k-labels-idx1-ubyte.gz').write_bytes(b'idx')
  size = pack_gpu.pack_cifar(str(source), str(out / 'send1' / 'cifar10-jpeg.tar.gz'))
  assert 0 < size < source.stat().st_size  # the shared bytes compress across files

  result = pack_gpu.unpack(str(out))
  assert result['unpacked'] == ['cifar10-jpeg.tar.gz', 'fashion_mnist']
  assert result['data'] == ['cifar10-jpeg', 'fashion_mnist']
  for name, data in images.items():
    assert (out / 'data' / name).read_bytes() == data
  assert (out / 'data' / 'fashion_mnist' / 't10k-labels-idx1-ubyte.gz').read_bytes() == b'idx'
  assert result['packages'].startswith('packages: ')
  assert pack_gpu.unpack(str(out))['data'] == ['cifar10-jpeg', 'fashion_mnist']  # idempotent
