#!/usr/bin/env bash
# One run on a GPU machine (the device tool's $OUT holds what comes back):
#   1. the versions there, and snnzoo installed without dependencies;
#   2. the benchmarks on CUDA, the GPU to themselves: LIF, scorer, models, search at
#      CIFAR-10's full size;
#   3. snasnet_fmnist trained on the full Fashion-MNIST for as many epochs as fit the time
#      left (scripts/training_epochs.py measures a step first), while the kernel tests run on
#      CUDA beside it (correctness only: they time nothing).
# Everything is packed into $OUT every 30 s, so a run cut short still returns what it made.
#
#   bash scripts/gpu_check.sh [SECONDS]      (default 530: the whole run, training included)
#
# Needs, in the repository: data/fashion-mnist/ (a copy of Debian's dataset-fashion-mnist
# files) and .whl/ (wheels of SpikingJelly and loguru, for the LIF benchmark's contender).
# Environment: DEVICE=cpu rehearses the script here on the CPU (quick benchmarks, a few
# training steps); SKIP_BENCHMARKS=1 trains only; BATCH (256) is the training batch; TESTS
# replaces the list of test files run on CUDA; COMPILE=1 adds the models benchmark's
# torch.compile contenders (e) and (g) (mode="reduce-overhead": CUDA graphs), about 4 more
# minutes.
# EPOCHS fixes the run's length instead of fitting it to the time left: a run longer than
# one session stops at the time limit with a checkpoint (SIGTERM), and the next session
# continues it when the files of the last $OUT are put in resume/ (carried with the call;
# it takes its options from the checkpoint, so EPOCHS and BATCH may be left unset then).
# The device tool carries at most 64 MiB: with data/ (31 MB) and the checkpoint parts (20 MB)
# leave run_best_model.safetensors (10 MB) out of resume/ if the tree would pass that; the
# run's best/ then keeps its card without weights until a later epoch improves on it.
# Weights come back as $OUT/run_model.safetensors and run_best_model.safetensors, the
# checkpoint as checkpoint.pt.part00, 01, ... (15 MB each; none once the run has finished),
# and the rest (logs, benchmark CSVs, the run folder without weights) as $OUT/results.tgz.
set -u
DEVICE=${DEVICE:-cuda}
BATCH_SET=${BATCH:-}
BATCH=${BATCH:-256}
if [ "$DEVICE" = cuda ]; then
    QUICK=() STEPS=() TEST_ENV=(SNNZOO_TEST_CUDA=1) PARALLEL=(-n 4)
    DATA=(--dataset fashion-mnist --data-dir data/fashion-mnist)
else
    QUICK=(--quick --no-csv) STEPS=(--max-steps 3) TEST_ENV=(TRITON_INTERPRET=1) PARALLEL=()
    DATA=(--dataset fashion-mnist-sample)
fi
TOTAL=${1:-530}
START=$(date +%s)
WORK=/tmp/gpu_check
OUT=${OUT:-/tmp/gpu_check_out}
rm -rf "$WORK" && mkdir -p "$WORK/logs" "$WORK/run" "$WORK/benchmarks" "$OUT"
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=15
elapsed() { echo $(( $(date +%s) - START )); }
log() { echo "[$(elapsed) s] $*" | tee -a "$WORK/logs/steps.log"; }

pack() {
    tar -czf "$OUT/results.tgz.tmp" -C "$WORK" --exclude='*.safetensors' --exclude='checkpoint.pt*' \
        logs run benchmarks 2>/dev/null && mv "$OUT/results.tgz.tmp" "$OUT/results.tgz"
    for weights in run/model.safetensors run/best/model.safetensors; do
        [ -f "$WORK/$weights" ] && cp "$WORK/$weights" "$OUT/${weights//\//_}.tmp" \
            && mv "$OUT/${weights//\//_}.tmp" "$OUT/${weights//\//_}"
    done
    if [ -f "$WORK/run/checkpoint.pt" ]; then  # in parts: one file may bring back 16 MiB
        rm -rf "$WORK/parts" && mkdir "$WORK/parts" \
            && split -b 15M -d "$WORK/run/checkpoint.pt" "$WORK/parts/checkpoint.pt.part" \
            && rm -f "$OUT"/checkpoint.pt.part* && cp "$WORK"/parts/* "$OUT/"
    else  # a finished run has none: no stale parts that would look unfinished
        rm -f "$OUT"/checkpoint.pt.part*
    fi
    return 0
}
# Every 30 s; on TERM it stops between commands, so the final pack never races a running one.
( trap 'exit 0' TERM; while true; do sleep 30 & wait $!; pack; done ) &
PACKER=$!

# 1. The machine and snnzoo
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c "import sys, torch, triton, timm, safetensors, huggingface_hub as h
print('python', sys.version.split()[0], '| torch', torch.__version__, '| triton', triton.__version__,
      '| timm', timm.__version__, '| safetensors', safetensors.__version__, '| huggingface_hub', h.__version__)
print(torch.cuda.get_device_name(), torch.cuda.get_device_properties(0).multi_processor_count, 'SMs')"
} 2>&1 | tee "$WORK/logs/device.txt"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-deps --no-build-isolation -e . > "$WORK/logs/install.log" 2>&1 \
    || { log "snnzoo did not install"; cat "$WORK/logs/install.log"; }
python3 -c "import snnzoo, snnzoo.kernels; print('snnzoo', snnzoo.__version__)" 2>&1 | tee -a "$WORK/logs/device.txt"
log "installed"

# A run to continue (resume/, from the last session's $OUT): restored before the benchmarks,
# so that every pack carries it. It keeps the options its checkpoint recorded.
RESUME=() RUN_OPTIONS=()
if [ -f resume/results.tgz ] && ls resume/checkpoint.pt.part* > /dev/null 2>&1; then
    tar -xzf resume/results.tgz -C "$WORK" run
    cat resume/checkpoint.pt.part* > "$WORK/run/checkpoint.pt"
    [ -f resume/run_best_model.safetensors ] && mkdir -p "$WORK/run/best" \
        && cp resume/run_best_model.safetensors "$WORK/run/best/model.safetensors"
    RESUME=(--resume)
    [ -n "${EPOCHS:-}" ] && RUN_OPTIONS+=(--epochs "$EPOCHS")
    [ -n "${BATCH_SET:-}" ] && RUN_OPTIONS+=(--batch-size "$BATCH")
    log "resuming the run in resume/ with its checkpoint's options ${RUN_OPTIONS[*]}"
elif [ -f resume/results.tgz ]; then
    log "resume/ holds no checkpoint parts (a finished run, or a session cut before training): training a new run"
fi

# 2. Benchmarks (each capped; a failure does not stop the others)
bench() {  # NAME CAP ARGS...
    local name=$1 cap=$2; shift 2
    log "benchmark $name $*"
    timeout "$cap" python3 "benchmarks/$name.py" --device "$DEVICE" "${QUICK[@]}" "$@" \
        > "$WORK/logs/bench_$name.md" 2> "$WORK/logs/bench_$name.err"
    log "benchmark $name: exit $?"
    tail -n 30 "$WORK/logs/bench_$name.md"
    mkdir -p "$WORK/benchmarks" && cp -r benchmarks/results "$WORK/benchmarks/"
}
if [ -z "${SKIP_BENCHMARKS:-}" ]; then
    bench lif 120
    bench scorer 45
    bench models $((${COMPILE:+240} + 150)) ${COMPILE:+--compile}
    if [ "$DEVICE" = cuda ]; then bench search 90 --width 1 --batch-size 256 --candidates 4; else bench search 90; fi
    pack
fi

# 3. Training, with the kernel tests beside it
calibrate() {  # BACKEND: epochs that fit, or nothing if the model fails to train
    python3 scripts/training_epochs.py snasnet_fmnist --budget $(( TOTAL - $(elapsed) - 40 )) \
        --batch-size "$BATCH" --eval-batch-size 1000 --margin 1.25 --device "$DEVICE" --backend "$1" \
        2>> "$WORK/logs/calibration.log" | tail -n 1
}
BACKEND=${BACKEND:-auto}
if [ -z "${RESUME[*]}" ]; then  # a new run: its length fitted to the time left, unless EPOCHS
    [ "$DEVICE" = cuda ] || EPOCHS=${EPOCHS:-1}  # a rehearsal: calibrating on a CPU takes minutes
    if [ -z "${EPOCHS:-}" ]; then
        EPOCHS=$(calibrate "$BACKEND")
        if [ -z "$EPOCHS" ] && [ "$BACKEND" = auto ]; then
            log "training with the auto LIF backend failed (see calibration.log); trying torch"
            BACKEND=torch
            EPOCHS=$(calibrate torch)
        fi
        tail -n 3 "$WORK/logs/calibration.log"
        case "$EPOCHS" in ''|*[!0-9]*) log "calibration failed; training 2 epochs"; EPOCHS=2 ;; esac
    fi
    RUN_OPTIONS=(--epochs "$EPOCHS" --batch-size "$BATCH")
fi
LEFT=$(( TOTAL - $(elapsed) - 20 ))
TRAINER=
if [ "$LEFT" -lt 30 ]; then  # timeout takes 0 as no limit and refuses a negative one
    log "no time left to train ($LEFT s); raise SECONDS or set SKIP_BENCHMARKS=1"
else
    log "training snasnet_fmnist ${RUN_OPTIONS[*]}, LIF backend $BACKEND (hard stop in $LEFT s)"
    timeout --signal=TERM "$LEFT" python3 -m snnzoo.train snasnet_fmnist "${DATA[@]}" "${RUN_OPTIONS[@]}" --val-split 0.05 \
        --eval-batch-size 1000 --checkpoint-minutes 2 --device "$DEVICE" --backend "$BACKEND" "${STEPS[@]}" "${RESUME[@]}" --out "$WORK/run" > "$WORK/logs/train.log" 2>&1 &
    TRAINER=$!
fi
log "kernel tests on CUDA"
env "${TEST_ENV[@]}" timeout 200 python3 -m pytest -q -p no:cacheprovider "${PARALLEL[@]}" \
    ${TESTS:-tests/test_lif.py tests/test_spike_kernel.py tests/test_models.py::test_equals_the_authors_network tests/test_models.py::test_equals_the_authors_network_in_float64} > "$WORK/logs/tests_cuda.log" 2>&1
log "kernel tests: exit $? ($(tail -n 1 "$WORK/logs/tests_cuda.log"))"
if [ -n "$TRAINER" ]; then
    wait "$TRAINER"
    log "training: exit $?"
    tr '\r' '\n' < "$WORK/logs/train.log" | grep -E "^epoch [0-9]+:|final weights|finished|Error|error" | tail -n 40
fi
kill "$PACKER" 2>/dev/null
wait "$PACKER" 2>/dev/null
pack
ls -la "$OUT"
log "done"
