#!/usr/bin/env bash
# One session on a GPU machine, in one go (about 9 minutes on an H200 with 16 cores):
#   1. benchmarks/bench_gpu_train.py --compile, alone on the machine  -> gpu_train.json, bench.log
#   2. at the same time (demo.log ends with the demo's config.yaml) (timings from here are not reported):
#      - the test suite with CUDA visible                             -> suite.log
#      - `hecktorseg demo --edition 2025` (device auto, so CUDA)      -> demo.log, report.md
#      - benchmarks/gpu_convergence.py                                -> gpu_convergence.json
# Usage: bash benchmarks/gpu_session.sh OUT_DIR
# Run from the repository root. Where the machine lacks packages, unpack them into a folder and
# put it on PYTHONPATH first (HECKTORSEG_SITE_TARBALL=path/to/site.tar.xz does that here).
set -u
OUT=${1:?usage: gpu_session.sh OUT_DIR}
mkdir -p "$OUT"
if [ -n "${HECKTORSEG_SITE_TARBALL:-}" ]; then
    mkdir -p /tmp/hs-site && tar -xJf "$HECKTORSEG_SITE_TARBALL" -C /tmp/hs-site || exit 1
    export PYTHONPATH=/tmp/hs-site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
start=$(date +%s)
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    nproc
    $PY -c "import torch, numpy, SimpleITK, openvino; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(), 'numpy', numpy.__version__, 'openvino', openvino.__version__)"
    lscpu | grep -E "Model name|Flags" | cut -c1-200
} >"$OUT/env.txt" 2>&1

timeout "${BENCH_TIMEOUT:-300}" $PY benchmarks/bench_gpu_train.py ${BENCH_ARGS:---compile} --json "$OUT/gpu_train.json" >"$OUT/bench.log" 2>&1
echo "bench exit $? after $(($(date +%s) - start)) s" | tee -a "$OUT/bench.log"

demo_dir=$(mktemp -d)
(timeout "${DEMO_TIMEOUT:-200}" $PY -m hecktorseg demo "$demo_dir/demo" --edition 2025 >"$OUT/demo.log" 2>&1
 echo "demo exit $? after $(($(date +%s) - start)) s" >>"$OUT/demo.log"
 cp "$demo_dir/demo/report.md" "$OUT/report.md" 2>/dev/null
 cat "$demo_dir/demo/model/fold_0/config.yaml" >>"$OUT/demo.log" 2>/dev/null) &
(timeout "${CONVERGENCE_TIMEOUT:-230}" $PY benchmarks/gpu_convergence.py --json "$OUT/gpu_convergence.json" \
    >"$OUT/convergence.log" 2>&1; echo "convergence exit $? after $(($(date +%s) - start)) s" >>"$OUT/convergence.log") &
# The offline-context test builds a venv from the package index, which a closed GPU machine cannot reach.
timeout "${SUITE_TIMEOUT:-230}" env OMP_NUM_THREADS=1 $PY -m pytest -n "${SUITE_WORKERS:-12}" -q -p no:cacheprovider \
    --deselect tests/container/test_dependencies.py::test_offline_context_installs_into_a_fresh_venv_and_runs_the_sample \
    ${SUITE_TESTS:-tests} >"$OUT/suite.log" 2>&1
echo "suite exit $? after $(($(date +%s) - start)) s" | tee -a "$OUT/suite.log"
wait
tail -n 3 "$OUT/demo.log" "$OUT/convergence.log"
grep -E "passed|failed" "$OUT/suite.log" | tail -3
