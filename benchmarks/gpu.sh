#!/usr/bin/env bash
# One call on a lent GPU: CUDA correctness tests, then ddcodec's rate-distortion on the cpu preset's crops (both
# profiles), time to quality on two full 768x512 images, the restoration benchmark with the papers' network sizes, and the full Kodak set, ddcodec only (Pillow's curves are measured on the CPU machine, or taken
# from benchmarks/anchors for full Kodak). Everything is written under benchmarks/results/gpu and packed into
# $OUT/gpu-results.tgz, since at most 8 files come back from a device call.
#
# Before the call, on the CPU machine (see the device tool's README for the wheel recipe):
#   mkdir -p .kodak && cp ../shared/data/kodak/*.png .kodak/      # the images do not travel otherwise
#   wheels for what the GPU image lacks (constriction, zstandard, pytorch-msssim, bjontegaard, pytorch_optimizer,
#   PyWavelets: the restoration benchmark's wavelet baseline) in .whl/
# then: device run "bash benchmarks/gpu.sh" with carry [".kodak", ".whl"], timeout_s 590 (the steps' timeouts add
# up to 580 s).
# Unpack with `tar xzf gpu-results.tgz` in the repository and commit benchmarks/results/gpu and benchmarks/results/kodak.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
res=benchmarks/results/gpu
mkdir -p "$res"
pack() { [ -n "${OUT:-}" ] && tar czf "$OUT/gpu-results.tgz" "$res" benchmarks/results/kodak; }
trap pack EXIT
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$res/gpu.txt"
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_model.py 2>&1 | tail -5 | tee "$res/tests.log"
rd() { python3 -m benchmarks.rd --codecs ddcodec --device cuda "$@" 2>&1 | grep -v "^rd:" | tail -30; }
for input in seed coded; do
  SECONDS=0
  timeout "${CPU_PRESET_S:-80}" bash -c "$(declare -f rd); rd --preset cpu --input $input --out $res/cpu-$input" \
    | tee "$res/cpu-$input.log"
  echo "cpu preset, $input input: $SECONDS s" | tee -a "$res/timing.txt"
done
SECONDS=0
timeout "${RESTORE_S:-60}" python3 -m benchmarks.restore --device cuda --preset full --size 256 --crops 2 --threads 8 \
  --out "$res/restore" 2>&1 | tail -30 | tee "$res/restore.log"
echo "restore benchmark, full DIP preset: $SECONDS s" | tee -a "$res/timing.txt"
SECONDS=0
timeout "${TTQ_S:-90}" python3 -m benchmarks.ttq --device cuda --levers effort=3 default effort=5 \
  --out "$res/ttq-full" 2>&1 | tail -12 | tee "$res/ttq.log"
echo "time to quality, two 768x512 images: $SECONDS s" | tee -a "$res/timing.txt"
if [ -d .kodak ]; then
  SECONDS=0
  # the resumable full-Kodak run (benchmarks/results/kodak): 8 images fitted together, each batch stored as it ends
  timeout "${KODAK_S:-190}" bash -c "$(declare -f rd); rd --preset kodak --images .kodak --jobs 8" \
    | tee "$res/kodak.log"
  echo "kodak, default (coded) input, 24 images x 4 rates: $SECONDS s (timeout ${KODAK_S:-190} s)" | tee -a "$res/timing.txt"
fi
