#!/usr/bin/env bash
# The GPU figures of docs/RESULTS.md, each stored as a record in docs/runs/:
#   benchmarks/gpu_suite.sh throughput CONFIG...   train img/s, float32 and bf16, batch 128/512/1024
#   benchmarks/gpu_suite.sh overhead               loop/bare ratio of configs/quickstart.py
#   benchmarks/gpu_suite.sh compile                first-step compile of every seed-A model
# CONFIG is a config name with optional variants (resnet50b, densenet100k12:fmnist); one whose
# file is missing is skipped. Then `python -m jaxcls.report --results-doc`.
# Each throughput config takes a few minutes (6 compiles), so run one or two per command.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
what=${1:?usage: benchmarks/gpu_suite.sh throughput CONFIG... | overhead | compile}
shift
case "$what" in
  throughput)
    for target in "$@"; do
      file="configs/${target%%:*}.py"
      if [[ ! -f "$file" ]]; then echo "skip $target: no $file" >&2; continue; fi
      config="$file${target#"${target%%:*}"}"
      tag=$(echo "$target" | tr ':,' '--')
      for dtype in float32 bfloat16; do
        for batch in 128 512 1024; do
          "$PY" benchmarks/throughput.py --config "$config" --batch-size "$batch" \
            --dtype "$dtype" --steps 30 --window 10 --record "gpu-$tag-$dtype-b$batch"
        done
      done
    done ;;
  overhead)
    "$PY" benchmarks/loop_overhead.py --config configs/quickstart.py --repeats 3 \
      --record gpu-loop-quickstart ;;
  compile)
    "$PY" benchmarks/compile_time.py --record gpu-compile-seed-a ;;
  *) echo "unknown: $what" >&2; exit 2 ;;
esac
