"""The CUDA path of the batched engine: psa.engine.batched.step's training step, unchanged, captured once
as a CUDA graph and replayed, so a step costs one launch instead of one per operation. Stacks whose
hidden layers form a narrow chain run it through the fused Triton kernels of
psa.engine.batched.kernels, inside the same graphs.

Several stacks (a group from psa.engine.batched.grouping.pack) are captured into the same graphs, each on its
own stream: the graph's branches run concurrently, so small stacks that would each leave most of
the GPU idle share it, and a group pays the per-step launch once.

Everything a step varies on lives in the device tensors of its Epoch, which the graph reads and
advances. Per meta-loop the host only refills orders and keys (computed ahead, on worker threads,
while the GPU trains the previous loop) and zeroes the moments; per step it replays. There is one
graph for full batches and one for the partial last batch.

Switches (environment, read when an Epochs is made): PSA_CUDA_GRAPHS=0 runs the same steps
eagerly, PSA_FUSED=0 keeps narrow stacks off the Triton kernels, PSA_PRECISION=fp32 (default) |
tf32 | bf16 picks the matmul precision (tf32: TF32 tensor cores for float32 matmuls, the fused
chain included; bf16: autocast of the torch matmuls, the fused chain staying float32). Everything
here is device-agnostic except the capture itself, so the CPU tests run it eagerly."""

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch

from psa.engine.batched import kernels, ops
from psa.engine.batched.stack import Stack
from psa.engine.batched.step import StepFunctions, Steps, loop_inputs, train_step
from psa.errors import PSAError
from psa.trial.data import MNIST

PRECISIONS = ("fp32", "tf32", "bf16")
_workers = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="psa-orders")


def precision() -> str:
    value = os.environ.get("PSA_PRECISION", "fp32")
    if value not in PRECISIONS:
        raise PSAError(f"PSA_PRECISION={value!r}: use one of {', '.join(PRECISIONS)}")
    return value


def _switch(name: str) -> bool:
    return os.environ.get(name, "1") != "0"


@contextmanager
def matmul_precision(mode: str, device: torch.device):
    """The torch-side matmul precision of `mode` for the duration of the block."""
    if mode == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False):
            yield
    elif mode == "tf32" and device.type == "cuda":
        previous = torch.backends.cuda.matmul.fp32_precision
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        try:
            yield
        finally:
            torch.backends.cuda.matmul.fp32_precision = previous
    else:
        yield


class GraphSteps(Steps):
    """psa.engine.batched.step.Steps on a GPU: each batch size's steps of the whole group captured once
    as a CUDA graph (every member on its own stream) and replayed; narrow chains through the fused
    kernels; the next loop's orders and keys computed on worker threads while this one trains.
    `graphs` / `fused` default to the environment switches (graphs only where CUDA is; fused only
    for stacks the kernels support)."""

    def __init__(self, stacks: list[Stack], data: MNIST, graphs: bool | None = None, fused: bool | None = None):
        super().__init__(stacks, data)
        device, self.mode = stacks[0].active.device, precision()
        self.use_graphs = device.type == "cuda" and _switch("PSA_CUDA_GRAPHS") if graphs is None else graphs
        use_fused = _switch("PSA_FUSED") if fused is None else fused
        tf32 = self.mode == "tf32"
        fused_step = StepFunctions(
            functools.partial(
                ops.gradients,
                forward=functools.partial(kernels.forward, tf32=tf32),
                backward=functools.partial(kernels.backward, tf32=tf32),
            )
        )
        self.passes = [fused_step if use_fused and kernels.supported(stack) else StepFunctions() for stack in stacks]
        self.pending, self.pinned = {}, []
        self.graphs, self.pool, self.streams = {}, None, None

    def prefetch(self, loop: int) -> None:
        if loop not in self.pending:
            self.pending[loop] = [
                _workers.submit(loop_inputs, stack, loop, self.n, len(self.batches)) for stack in self.stacks
            ]

    def inputs(self, loop: int) -> list:
        self.prefetch(loop)
        futures = self.pending.pop(loop)
        self.prefetch(loop + 1)
        pin = self.stacks[0].active.device.type == "cuda"
        # Pinned host orders copy without blocking; they stay referenced until the next loop's.
        self.pinned = [(orders.pin_memory() if pin else orders, keys) for orders, keys in (f.result() for f in futures)]
        return self.pinned

    def step(self, member: int, batch: int) -> None:
        with matmul_precision(self.mode, self.stacks[member].active.device):
            train_step(self.stacks[member], self.epochs[member], self.data, batch, self.passes[member])

    @torch.no_grad()
    def __call__(self, batch: int) -> None:
        if self.use_graphs:
            self.graph(batch).replay()
        else:
            super().__call__(batch)

    def graph(self, batch: int) -> "torch.cuda.CUDAGraph":
        if batch not in self.graphs:
            self.graphs[batch] = self.capture(batch)
        return self.graphs[batch]

    def branches(self, batch: int) -> None:
        """Every member's step, each on its own stream forked from and joined back into the
        current one: captured, the members become concurrent branches of one graph."""
        main = torch.cuda.current_stream()
        for member, stream in enumerate(self.streams):
            stream.wait_stream(main)
            with torch.cuda.stream(stream):
                self.step(member, batch)
        for stream in self.streams:
            main.wait_stream(stream)

    def capture(self, batch: int) -> "torch.cuda.CUDAGraph":
        """Warm up (cuBLAS handles, Triton compilation) on a side stream, put the state back,
        capture."""
        if self.streams is None:
            self.streams = [torch.cuda.Stream() for _ in self.stacks]
        state = [
            t
            for stack, epoch in zip(self.stacks, self.epochs)
            for t in (stack.active, epoch.m, epoch.v, epoch.updates, epoch.step, epoch.loss)
        ]
        saved = [t.clone() for t in state]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.branches(batch)
        torch.cuda.current_stream().wait_stream(side)
        for t, copy in zip(state, saved):
            t.copy_(copy)
        graph = torch.cuda.CUDAGraph()
        # The graphs never run concurrently and keep nothing between replays, so they share memory.
        with torch.cuda.graph(graph, pool=self.pool):
            self.branches(batch)
        self.pool = graph.pool()
        return graph


@torch.no_grad()
def accuracy(stack: Stack, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, chunk: int) -> list[float]:
    """ops.accuracy, through the fused kernels where the stack has a narrow chain (in one
    chunk: the chain keeps no tape, so memory stays small), at the training precision."""
    mode = precision()
    with matmul_precision(mode, flat.device):
        if not (_switch("PSA_FUSED") and kernels.supported(stack)):
            return ops.accuracy(stack, flat, x, y, chunk)
        # The samples are every trial's: the first layer runs as one GEMM over all trials' weights.
        logits = kernels.forward(stack, x.unsqueeze(0), flat=flat, tape=False, tf32=mode == "tf32")[0]
    correct = (logits.argmax(2) == y).sum(1)
    return ops.percent(correct, len(x))
