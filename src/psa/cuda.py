"""The CUDA path of the batched engine: batched.epoch_steps' exact semantics, with each training
step (batch gather, dropout masks, forward, backward, AdamW) captured once as a CUDA graph and
replayed, so a step costs one launch instead of one per operation. Stacks whose hidden layers form
a narrow chain run it through the fused Triton kernels of psa.kernels, inside the same graphs.

Several stacks (a group from batched.pack) are captured into the same graphs, each on its own
stream: the graph's branches run concurrently, so small stacks that would each leave most of the
GPU idle share it, and a group pays the per-step launch once.

Everything a step varies on lives in device tensors that the graph reads: the loop's sample
orders, the dropout keys of every step, and the step counters (batch position, AdamW's count)
that the graph itself advances. Per meta-loop the host only refills orders and keys (computed ahead, on
worker threads, while the GPU trains the previous loop) and zeroes the moments; per step it
replays. There is one graph for full batches and one for the partial last batch.

Switches (environment, read when an Epochs is made): PSA_CUDA_GRAPHS=0 runs the same steps
eagerly, PSA_FUSED=0 keeps narrow stacks off the Triton kernels, PSA_PRECISION=fp32 (default) |
tf32 | bf16 picks the matmul precision (tf32: TF32 tensor cores for float32 matmuls, the fused
chain included; bf16: autocast of the torch matmuls, the fused chain staying float32). Everything
here is device-agnostic except the capture itself, so the CPU tests run it eagerly."""

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch

from psa import PSAError, batched, kernels, randomness
from psa.data import MNIST

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


def _loop_inputs(stack: batched.Stack, loop: int, n: int, steps: int):
    """Futures of a meta-loop's sample orders (one per row of stack.seeds) and dropout keys
    (steps, dropout trials)."""
    orders = [_workers.submit(randomness.shuffle, seed, loop, n) for seed in stack.seeds]
    dropping = stack.specs[stack.drop] if stack.drop is not None else []
    keys = _workers.submit(lambda: torch.tensor(
        [[randomness.dropout_key(s.seed, loop, step) for s in dropping] for step in range(steps)],
        dtype=torch.int64))
    return orders, keys


class _Steps:
    """One stack's static step buffers for one training set: what its part of a graph reads."""

    def __init__(self, stack: batched.Stack, data: MNIST, fused: bool, mode: str):
        self.stack, self.data, self.fused, self.mode = stack, data, fused, mode
        self.n, self.size, self.lr = len(data.x_train), stack.specs[0].hyper.batch_size, stack.specs[0].hyper.lr
        self.count = -(-self.n // self.size)
        device = stack.active.device
        self.orders = torch.zeros(len(stack.seeds), self.n, dtype=torch.int64, device=device)
        self.step = torch.zeros((), dtype=torch.int64, device=device)
        self.updates = torch.zeros((), dtype=torch.float32, device=device)  # AdamW's own count (batched.adamw_step)
        self.m, self.v = torch.zeros_like(stack.active), torch.zeros_like(stack.active)
        self.keys = None
        if stack.drop is not None:
            self.keys = torch.zeros(self.count, stack.drop.stop - stack.drop.start, dtype=torch.int64, device=device)
            if stack.grid is None or stack.grid.shape[0] < self.size:
                stack.grid = randomness.counter_grid(self.size, stack.layout.dropout_units, device)
            self.grid = stack.grid  # the graphs read this tensor, whatever the stack holds later
        self.pending = {}

    def prefetch(self, loop: int) -> None:
        if loop not in self.pending:
            self.pending[loop] = _loop_inputs(self.stack, loop, self.n, self.count)

    def load(self, loop: int) -> None:
        """Fill the static buffers for `loop`, start computing the next loop's, reset AdamW."""
        self.prefetch(loop)
        orders, keys = self.pending.pop(loop)
        self.prefetch(loop + 1)
        pinned = self.orders.device.type == "cuda"
        host = torch.stack([f.result() for f in orders])
        self.host = host.pin_memory() if pinned else host  # alive until the copy has run
        self.orders.copy_(self.host, non_blocking=pinned)
        if self.keys is not None:
            self.keys.copy_(keys.result())
        for fresh in (self.m, self.v, self.step, self.updates):
            fresh.zero_()

    def state(self) -> list[torch.Tensor]:
        """What a step changes (and a warm-up step must put back)."""
        return [self.stack.active, self.m, self.v, self.step, self.updates]

    def body(self, batch: int) -> None:
        """One training step of `batch` samples, reading only static tensors."""
        stack, step = self.stack, self.step
        positions = torch.arange(batch, device=step.device) + step * self.size
        x, y = batched.batch_inputs(stack, self.data, self.orders.index_select(1, positions))
        masks = None
        if self.keys is not None:
            key = self.keys.index_select(0, step.view(1)).view(-1, 1, 1)
            keep = randomness.keep_mask(self.grid[:batch], key, stack.drop_p)
            masks = keep.to(stack.active.dtype) / (1 - stack.drop_p)
        with matmul_precision(self.mode, step.device):
            if self.fused:
                tf32 = self.mode == "tf32"
                logits, last, tape = kernels.forward(stack, x, masks, tf32=tf32)
                kernels.backward(stack, batched.cross_entropy_grad(logits, y), last, tape, masks, tf32=tf32)
            else:
                logits, last, tape = batched.forward(stack, x, masks)
                batched.backward(stack, batched.cross_entropy_grad(logits, y), last, tape, masks)
        batched.adamw_step(stack, self.m, self.v, self.updates, self.lr)
        step.add_(1)


class Epochs:
    """batched.epoch_runner on a GPU: called with (loop, on_batch), it trains every stack of the
    group for one epoch. `graphs` / `fused` default to the environment switches (graphs only
    where CUDA is; fused only for stacks the kernels support)."""

    def __init__(self, stacks: list[batched.Stack], data: MNIST, graphs: bool | None = None,
                 fused: bool | None = None):
        device, mode = stacks[0].active.device, precision()
        self.use_graphs = device.type == "cuda" and _switch("PSA_CUDA_GRAPHS") if graphs is None else graphs
        use_fused = _switch("PSA_FUSED") if fused is None else fused
        self.members = [_Steps(s, data, use_fused and kernels.supported(s), mode) for s in stacks]
        self.n, self.size = len(data.x_train), stacks[0].specs[0].hyper.batch_size
        self.graphs, self.pool, self.streams = {}, None, None

    @torch.no_grad()
    def __call__(self, loop: int, on_batch=lambda: None) -> None:
        for member in self.members:
            member.load(loop)
        for start in range(0, self.n, self.size):
            batch = min(self.size, self.n - start)
            if self.use_graphs:
                self.graph(batch).replay()
            else:
                for member in self.members:
                    member.body(batch)
            for _ in self.members:
                on_batch()

    def graph(self, batch: int) -> "torch.cuda.CUDAGraph":
        if batch not in self.graphs:
            self.graphs[batch] = self.capture(batch)
        return self.graphs[batch]

    def steps(self, batch: int) -> None:
        """Every member's step, each on its own stream forked from and joined back into the
        current one: captured, the members become concurrent branches of one graph."""
        main = torch.cuda.current_stream()
        for member, stream in zip(self.members, self.streams):
            stream.wait_stream(main)
            with torch.cuda.stream(stream):
                member.body(batch)
        for stream in self.streams:
            main.wait_stream(stream)

    def capture(self, batch: int) -> "torch.cuda.CUDAGraph":
        """Warm up (cuBLAS handles, Triton compilation) on a side stream, put the state back,
        capture."""
        if self.streams is None:
            self.streams = [torch.cuda.Stream() for _ in self.members]
        state = [t for member in self.members for t in member.state()]
        saved = [t.clone() for t in state]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.steps(batch)
        torch.cuda.current_stream().wait_stream(side)
        for t, copy in zip(state, saved):
            t.copy_(copy)
        graph = torch.cuda.CUDAGraph()
        # The graphs never run concurrently and keep nothing between replays, so they share memory.
        with torch.cuda.graph(graph, pool=self.pool):
            self.steps(batch)
        self.pool = graph.pool()
        return graph


@torch.no_grad()
def accuracy(stack: batched.Stack, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, chunk: int) -> list[float]:
    """batched.accuracy, through the fused kernels where the stack has a narrow chain (in one
    chunk: the chain keeps no tape, so memory stays small), at the training precision."""
    mode = precision()
    with matmul_precision(mode, flat.device):
        if not (_switch("PSA_FUSED") and kernels.supported(stack)):
            return batched.accuracy(stack, flat, x, y, chunk)
        # The samples are every trial's: the first layer runs as one GEMM over all trials' weights.
        logits = kernels.forward(stack, x.unsqueeze(0), flat=flat, tape=False, tf32=mode == "tf32")[0]
    correct = (logits.argmax(2) == y).sum(1)
    return batched.percent(correct, len(x))
