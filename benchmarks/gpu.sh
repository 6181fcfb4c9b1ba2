#!/usr/bin/env bash
# One call on a lent GPU: CUDA correctness tests, the speed grid, then as much of the Kodak RD run as fits.
#
# Before the call, on the CPU machine (see /work/.library/device/README.md for the wheel recipe):
#   mkdir -p .kodak && cp ../shared/data/kodak/*.png .kodak/      # the images do not travel otherwise
#   wheels for what the GPU image lacks (constriction, pytorch-msssim, bjontegaard) in .whl/
# then: device run "bash benchmarks/gpu.sh" with carry [".kodak", ".whl"], timeout_s 560.
# Results land in $OUT (or benchmarks/results/gpu) and are committed under benchmarks/results/.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
out=${OUT:-benchmarks/results/gpu}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_model.py 2>&1 | tee "$out/tests.log"
python3 -m benchmarks.speed --device cuda --batch 8 --out "$out/speed-gpu.json" 2>&1 | tee "$out/speed.log"
if [ -d .kodak ]; then
  timeout 300 python3 -m benchmarks.rd --preset kodak --images .kodak --out "$out/kodak" 2>&1 | tail -40 | tee "$out/rd.log"
fi
