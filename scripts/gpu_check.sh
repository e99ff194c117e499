#!/usr/bin/env bash
# The one prepared GPU check of the CUDA path (psa.engine.batched.cuda and .kernels), run from the
# repository root on a CUDA machine: `bash scripts/gpu_check.sh`. Needs MNIST in $PSA_DATA_DIR (default
# .device/mnist); writes logs and a JSON of the timings under $OUT. About 8 minutes on an H100:
#   1. the CUDA tests: graphs, fused kernels, and the float64 single-trial vs batched
#      equivalence on CUDA;
#   2. `psa bench --estimate-sweep --device cuda --validate`: the full-grid estimate (independent
#      seeding, the sweep's default), its error against a real two-meta-loop sweep, FLOP/s per
#      group, and bench.json (per-architecture seconds: `psa cloud launch --cost-model`);
#   3. seconds per meta-loop of one 60-trial stack for a few architectures on three paths:
#      eager batched engine, CUDA graphs, CUDA graphs + fused Triton chain; and groups of small
#      stacks trained one after another vs side by side (psa.engine.batched.grouping.pack);
#   4. the effect of PSA_PRECISION=tf32 / bf16 on validation accuracy (2 meta-loops, 60 trials).
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
export PSA_DATA_DIR=${PSA_DATA_DIR:-.device/mnist}
OUT=${OUT:-/tmp/psa-gpu-check}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"

echo "== psa bench --estimate-sweep --device cuda --validate"
timeout ${BENCH_SECONDS:-200} python3 -m psa bench --estimate-sweep --device cuda --validate --verbose \
    --validate-arch "18*18,17*17,16*16,15*15,14*14,13*13,12*12,11*11" --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"

echo "== tests"
timeout ${TEST_SECONDS:-110} python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_kernels.py 2>&1 | tee "$OUT/tests.log"

echo "== timings"
timeout ${TIMING_SECONDS:-150} python3 - "$OUT" <<'PY' 2>&1 | tee "$OUT/timings.log"
import json, os, sys, time

import torch

from psa.engine import batched
from psa.engine.batched import cuda, kernels, ops, train_stacks
from psa.engine.batched.step import Steps
from psa.trial.data import MNIST, load_mnist
from psa.trial.modes import MODES
from psa.trial.architecture import Architecture
from psa.sweeps.settings import RunSettings

# DEVICE=cpu runs the same sections without graphs (a smoke check of this script on any machine).
out, device = sys.argv[1], torch.device(os.environ.get("DEVICE", "cuda"))
STEPS = int(os.environ.get("STEPS", "6"))
REPRESENTATIVE = os.environ.get("ARCHS", "2048*1,632*4,18*18,1*2048").split(",")
PACKS = os.environ.get("PACKS", "18*18,17*17,16*16,15*15,14*14,13*13,12*12,11*11;1*64,1*32,1*16,1*8,2*59,2*30,2*16,2*8;"
                       "2048*1,1024*1,939*2,632*4,588*2,425*4,512*1,354*2").split(";")
data = load_mnist().to(device)
BATCH, N = 256, len(data.x_train)
PER_EPOCH = N // BATCH + (N % BATCH) / BATCH
GRAPHS = device.type == "cuda"
report = {"device": torch.cuda.get_device_name() if GRAPHS else "cpu", "steps": STEPS, "paths": {}, "packing": {},
          "precision": {}}


def first(train: int, val: int) -> MNIST:
    return MNIST(data.x_train[:train], data.y_train[:train], data.x_val[:val], data.y_val[:val], data.x_test,
                 data.y_test, data.y_full_train, data.train_indices, data.val_indices, data.source)


def specs_of(arch: str):
    arch = Architecture.parse(arch)
    return batched.order_specs(RunSettings((arch,), MODES, 10, seed=0).grid().specs)


def save() -> None:
    """After every section, so a run cut short by its timeout still leaves what it measured."""
    json.dump(report, open(os.path.join(out, "gpu_check.json"), "w"), indent=1)


def sync() -> None:
    if GRAPHS:
        torch.cuda.synchronize()


def clock(fn) -> float:
    sync()
    started = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - started


def epoch(steps, loop: int) -> None:
    steps.begin(loop)
    for size in steps.batches:
        steps(size)


PATHS = {
    "eager": (Steps, ops.accuracy),
    "graphs": (lambda stacks, d: cuda.GraphSteps(stacks, d, graphs=GRAPHS, fused=False), ops.accuracy),
    "fused": (lambda stacks, d: cuda.GraphSteps(stacks, d, graphs=GRAPHS, fused=True), cuda.accuracy),
}


def per_loop(arch: str, path: str, steps: int, val_samples: int = 2000) -> float:
    """Seconds per meta-loop: `steps` timed steps scaled to an epoch, plus validation."""
    make, evaluate = PATHS[path]
    short = first(BATCH * steps, val_samples)
    stack = batched.Stack.of(specs_of(arch), device, torch.float32)
    training = make([stack], short)
    epoch(training, 1)  # warm-up: capture and compilation
    step = clock(lambda: epoch(training, 2)) / steps
    evaluate(stack, stack.active, short.x_val, short.y_val, 1000)
    val = clock(lambda: evaluate(stack, stack.active, short.x_val, short.y_val, 1000)) * len(data.x_val) / val_samples
    return step * PER_EPOCH + val


def real_loop(archs: list[str]) -> float:
    """One whole meta-loop of a group as the sweep trains it (ablation, epoch, validation, LKG) on
    the default path: the second of two, the first paying for capture and compilation."""
    marks = []

    def mark(stacks, loop, records):
        sync()
        marks.append(time.perf_counter())

    train_stacks([specs_of(a) for a in archs], data, 2, on_loop=mark)
    return marks[1] - marks[0]


print(f"{'arch':>9} {'eager s/loop':>13} {'graphs s/loop':>14} {'fused s/loop':>13} {'real loop':>10} {'speed-up':>9}")
for arch in REPRESENTATIVE:
    fusable = kernels.supported(batched.Stack.of(specs_of(arch)[:1], device, torch.float32))
    row = {path: per_loop(arch, path, 3 if path == "eager" else STEPS) for path in PATHS if path != "fused" or fusable}
    row["real"] = real_loop([arch])
    report["paths"][arch] = row
    fused = f"{row['fused']:13.3f}" if "fused" in row else f"{'-':>13}"
    print(f"{arch:>9} {row['eager']:13.3f} {row['graphs']:14.3f} {fused} {row['real']:10.3f} "
          f"{row['eager'] / row['fused' if fusable else 'graphs']:8.1f}x", flush=True)
    if GRAPHS:
        torch.cuda.empty_cache()
    save()

print("\npacking: one real meta-loop of each stack alone vs the group side by side (60 trials each)")
for names in PACKS:
    archs = names.split(",")
    alone = sum(real_loop([a]) for a in archs)
    together = real_loop(archs)
    report["packing"][names] = {"alone": alone, "together": together}
    print(f"{names}: alone {alone:.3f} s, side by side {together:.3f} s ({alone / together:.2f}x)", flush=True)
    if GRAPHS:
        torch.cuda.empty_cache()
    save()

print("\nprecision (2 meta-loops, 60 trials each; mean bounty and mean |bounty - fp32 bounty|, percent)")
for arch in os.environ.get("PRECISION_ARCHS", "18*18,1*2048").split(","):
    bounties = {}
    for mode in cuda.PRECISIONS:
        os.environ["PSA_PRECISION"] = mode
        started = time.perf_counter()
        results = batched.train_trials(specs_of(arch), data, 2, device=device, memory_bytes=40 << 30)
        bounties[mode] = [r.bounty for r in results]
        seconds = time.perf_counter() - started
        gap = sum(abs(a - b) for a, b in zip(bounties[mode], bounties["fp32"])) / len(results)
        report["precision"][f"{arch} {mode}"] = {"mean": sum(bounties[mode]) / len(results), "gap": gap, "seconds": seconds}
        print(f"{arch:>9} {mode:>5}: mean bounty {sum(bounties[mode]) / len(results):6.2f}  "
              f"|gap| {gap:5.3f}  ({seconds:.1f} s)", flush=True)
        save()
os.environ["PSA_PRECISION"] = "fp32"
PY
