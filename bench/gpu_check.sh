#!/usr/bin/env bash
# The GPU checks in one run, for a machine with an NVIDIA GPU, cupy and torch but no network and no
# hubkit install: the gpu-marked tests, bench/gpu.py (with cuDNN, then a few rows without it),
# bench/gpu_profile.py and bench/models.py --device cuda.
#   bash bench/gpu_check.sh [OUTDIR]        (logs go to OUTDIR, default ./gpu-check-logs)
# Each step has its own time limit so one hang cannot eat the others' time; STEPS picks steps
# (default "tests bench nocudnn profile models"), TESTS replaces the test paths (default: every test file that
# marks gpu tests, so files needing test-only packages the GPU machine lacks are not collected),
# PYTEST_ARGS adds pytest options (e.g. "-n 8" where pytest-xdist is installed).
set -u
out=${1:-gpu-check-logs}
mkdir -p "$out"
py=${PYTHON:-python3}
steps=${STEPS:-tests bench nocudnn profile models}
# Import hubkit from this checkout, with zoo/, datasets/ and baselines/ where an install would put them.
[ -e hubkit/zoo ] || ln -s ../zoo hubkit/zoo
[ -e hubkit/datasets ] || ln -s ../datasets hubkit/datasets
[ -e hubkit/baselines ] || ln -s ../baselines hubkit/baselines
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HUBKIT_NO_PROGRESS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
$py -c 'import cupy, numpy, torch, hubkit; print("cupy", cupy.__version__, "numpy", numpy.__version__, "torch",
torch.__version__, "hubkit cuDNN", hubkit.backends.cudnn.version(), hubkit.backends.cudnn.unavailable_reason())' \
    | tee -a "$out/gpu.txt"
tests=${TESTS:-$(grep -rl --include='test_*.py' 'mark\.gpu' tests | sort | tr '\n' ' ')}
case " $steps " in *" tests "*)
    # shellcheck disable=SC2086
    timeout "${TEST_LIMIT:-300}" $py -m pytest -m gpu -p no:cacheprovider -q --timeout 120 ${PYTEST_ARGS:-} $tests 2>&1 | tee "$out/tests.log"
    echo "tests exit: ${PIPESTATUS[0]}" | tee -a "$out/tests.log" ;;
esac
case " $steps " in *" bench "*)
    (cd bench && timeout "${BENCH_LIMIT:-150}" $py gpu.py --repeat "${REPEAT:-10}" 2>&1) | tee "$out/bench_gpu.log" ;;
esac
case " $steps " in *" nocudnn "*)
    (cd bench && timeout "${NOCUDNN_LIMIT:-80}" $py gpu.py --no-cudnn --only ResNet-18 --repeat 5 2>&1) \
        | tee "$out/bench_gpu_nocudnn.log" ;;
esac
case " $steps " in *" profile "*)
    (cd bench && timeout "${PROFILE_LIMIT:-60}" $py gpu_profile.py --top 20 2>&1) | tee "$out/profile.log" ;;
esac
case " $steps " in *" models "*)
    (cd bench && timeout "${MODELS_LIMIT:-120}" $py models.py --device cuda --repeat "${REPEAT:-10}" 2>&1) \
        | tee "$out/bench_models.log" ;;
esac
