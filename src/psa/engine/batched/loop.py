"""The batched engine's meta-loop (docs/DESIGN.md section 4) for a group of stacks trained side
by side, top to bottom: a fresh copy of every LKG with one ablation, an epoch of training steps,
validation, and promotion of the candidates that beat their LKG."""

import contextlib
import gc
import math
import time

import torch

from psa.engine.batched import native
from psa.engine.batched.grouping import EVAL_CHUNK, stacks_of
from psa.engine.batched.stack import Stack, ablate, promote
from psa.engine.batched.step import Steps
from psa.progress import Reporter
from psa.trial.data import MNIST
from psa.trial.spec import Progress, TrialResult, TrialSpec


def device_path(stacks: list[Stack], data: MNIST):
    """Training steps and accuracy for the data's device: on a GPU, CUDA graphs and fused Triton
    kernels; on a CPU, the fused chains of psa.engine.batched.native where they are built."""
    if data.x_train.device.type == "cuda":
        from psa.engine.batched import cuda

        return cuda.GraphSteps(stacks, data), cuda.accuracy
    return Steps(stacks, data), native.accuracy


@contextlib.contextmanager
def _older_objects_frozen():
    """Python's full garbage collection walks every object it tracks: the ~170,000 that torch and
    psa leave after import take it ~100 ms, and a run's first meta-loops allocate enough to set
    one off (a 16*2 loop of 0.3 s took 0.4). The objects that exist when training starts are left
    out of collections (gc.freeze) while it runs, and are collected as before after it."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@torch.no_grad()
def train_stacks(
    groups: list[list[TrialSpec]],
    data: MNIST,
    meta_loops: int,
    reporter: Reporter | None = None,
    on_loop=None,
    saved: dict[TrialSpec, Progress] | None = None,
) -> list[list[TrialResult]]:
    """Meta-loops up to `meta_loops` of every trial, each list of `groups` as one stack (one
    architecture and family; lr and batch size shared by all), the stacks side by side. With
    `saved`, every trial goes on from its saved state (all saved after the same loop). `data` is
    already on the device. After each loop, on_loop(stacks, loop, records) gets each stack's
    records."""
    reporter = reporter or Reporter(live=False, every=math.inf)
    device, dtype = data.x_train.device, data.x_train.dtype
    # Deep stacks' gradients underflow into denormals, which make CPU matmuls ~10x slower; float32
    # AdamW would turn such gradients into no update anyway (their square underflows to 0).
    torch.set_flush_denormal(True)
    started = time.perf_counter()
    stacks = [Stack.of(specs, device, dtype, saved) for specs in groups]
    starts = {state.loops_done for state in (saved or {}).values()}
    assert len(starts) <= 1 and len(saved or {}) in (0, sum(map(len, groups))), (
        "every trial of a group goes on from the same loop"
    )
    steps, accuracy = device_path(stacks, data)
    histories = [[[] for _ in stack.specs] for stack in stacks]
    with _older_objects_frozen():
        for loop in range(max(starts, default=0) + 1, meta_loops + 1):
            # Ablations never accumulate: each loop damages a fresh copy of the LKG (from loop 2 on).
            choices = []
            for stack in stacks:
                stack.active.copy_(stack.lkg)
                choices.append(ablate(stack, loop) if loop > 1 else [None] * len(stack.specs))
            # One epoch: new shuffles and dropout keys, fresh AdamW, every batch, every stack.
            steps.begin(loop)
            for batch in steps.batches:
                steps(batch)
                reporter.step()
            # Validation; strict improvement makes a candidate its trial's LKG.
            records = [
                promote(stack, loop, accuracy(stack, stack.active, data.x_val, data.y_val, EVAL_CHUNK), chosen, losses)
                for stack, chosen, losses in zip(stacks, choices, steps.losses())
            ]
            for stack_histories, stack_records in zip(histories, records):
                for history, record in zip(stack_histories, stack_records):
                    history.append(record)
            if on_loop:
                on_loop(stacks, loop, records)
            reporter.loop_done(loop)
    seconds = (time.perf_counter() - started) / sum(len(stack.specs) for stack in stacks)
    results = []
    for stack, stack_histories in zip(stacks, histories):
        tests = accuracy(stack, stack.lkg, data.x_test, data.y_test, EVAL_CHUNK)
        results.append(
            [
                TrialResult(
                    spec, stack.bounty[t], stack.bounty_loop[t], tests[t], stack_histories[t], seconds, str(device)
                )
                for t, spec in enumerate(stack.specs)
            ]
        )
    return results


def train_trials(
    specs: list[TrialSpec],
    data: MNIST,
    meta_loops: int,
    device: str = "cpu",
    memory_bytes: int = 2 << 30,
    dtype=torch.float32,
    reporter: Reporter | None = None,
    on_loop=None,
) -> list[TrialResult]:
    """Train trials of one architecture and family in stacks that fit `memory_bytes`, one stack
    at a time; results come back in the order of `specs`."""
    data = data.to(device, dtype)
    results = {}
    for stack in stacks_of(specs, memory_bytes, torch.finfo(dtype).bits // 8):
        for result in train_stacks([stack], data, meta_loops, reporter, on_loop)[0]:
            results[id(result.spec)] = result
    return [results[id(spec)] for spec in specs]
