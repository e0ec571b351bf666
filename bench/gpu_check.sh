#!/usr/bin/env bash
# The GPU checks in one run, for a machine with an NVIDIA GPU, cupy and torch but no network and no
# hubkit install: the gpu-marked tests, then bench/gpu.py and bench/models.py --device cuda.
#   bash bench/gpu_check.sh [OUTDIR]        (logs go to OUTDIR, default ./gpu-check-logs)
# Each step has its own time limit so one hang cannot eat the others' time.
set -u
out=${1:-gpu-check-logs}
mkdir -p "$out"
py=${PYTHON:-python3}
# Import hubkit from this checkout, with zoo/ and datasets/ where an install would put them.
[ -e hubkit/zoo ] || ln -s ../zoo hubkit/zoo
[ -e hubkit/datasets ] || ln -s ../datasets hubkit/datasets
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HUBKIT_NO_PROGRESS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
$py -c 'import cupy, numpy, torch; print("cupy", cupy.__version__, "numpy", numpy.__version__, "torch", torch.__version__)' \
    | tee -a "$out/gpu.txt"
timeout "${TEST_LIMIT:-300}" $py -m pytest -m gpu -p no:cacheprovider -q --timeout 120 \
    tests/engine/test_gpu.py tests/kernels/test_cuda_kernels.py tests/nn/test_module.py tests/zoo/test_vision_gpu.py tests/zoo/test_text_gpu.py tests/zoo/test_audio_gpu.py \
    2>&1 | tee "$out/tests.log"
echo "tests exit: ${PIPESTATUS[0]}" | tee -a "$out/tests.log"
(cd bench && timeout "${BENCH_LIMIT:-150}" $py gpu.py --repeat "${REPEAT:-10}" 2>&1) | tee "$out/bench_gpu.log"
(cd bench && timeout "${MODELS_LIMIT:-120}" $py models.py --device cuda --repeat "${REPEAT:-10}" 2>&1) \
    | tee "$out/bench_models.log"
