"""One training step of a stack, the only one there is: the CPU runs it step after step, and the
CUDA path captures the very same calls in a graph (psa.engine.batched.cuda). Everything a step varies on
lives in the tensors of an Epoch: this loop's sample orders and dropout keys, AdamW's fresh moments
and step count, the position of the next batch, which the step advances itself, and the running
sum of the training loss."""

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from psa.engine.batched import native, ops
from psa.engine.batched.stack import Stack
from psa.trial import randomness
from psa.trial.architecture import INPUTS
from psa.trial.data import MNIST, NORMALISE

MASK_CHUNK = 1 << 17  # elements hashed at a time on a CPU: the int32 blocks stay in its cache


def loop_inputs(stack: Stack, loop: int, n: int, steps: int, orders: torch.Tensor | None = None):
    """Host work of a meta-loop: the sample order of each of stack.seeds (seeds, n), written into
    the rows of `orders` where given (a CPU's epoch: a 24 MB copy less for 60 trials), and the
    dropout key of every step and dropout trial (steps, dropout trials), or None. The shuffles
    run on torch's threads side by side (each ~0.3-0.5 ms for MNIST; 60 of them were 9% of a 16*2
    meta-loop on 2 cores, one core idle)."""
    orders = torch.empty(len(stack.seeds), n, dtype=torch.int64) if orders is None else orders
    with ThreadPoolExecutor(torch.get_num_threads()) as pool:
        list(pool.map(lambda i: randomness.shuffle(stack.seeds[i], loop, n, orders[i]), range(len(stack.seeds))))
    if stack.drop is None:
        return orders, None
    dropping = stack.specs[stack.drop]
    keys = torch.tensor(
        [[randomness.dropout_key(s.seed, loop, step) for s in dropping] for step in range(steps)], dtype=torch.int64
    )
    return orders, keys


@dataclass(eq=False)
class Epoch:
    """What one stack's training steps read and advance during a meta-loop's epoch."""

    orders: torch.Tensor  # (len(stack.seeds), n) this loop's sample orders
    keys: torch.Tensor | None  # (steps, dropout trials) dropout keys
    grid: torch.Tensor | None  # (batch size, dropout units) hashed counters of the masks, int32
    masks: torch.Tensor | None  # (dropout trials * batch size * dropout units) a step's masks, reused
    m: torch.Tensor  # AdamW's moments, fresh every loop
    v: torch.Tensor
    updates: torch.Tensor  # AdamW's step count: a float32 scalar, as torch.optim keeps it
    step: torch.Tensor  # int64 scalar: the index of the next batch
    positions: torch.Tensor  # arange(batch size): the next batch's positions are these + step * batch size
    loss: torch.Tensor  # (trials,) the sum of each trial's batch-mean losses so far this epoch
    # Input rows of a step, gathered into the same memory every step: fresh tens of MB a step cost
    # page faults on a CPU, and a CUDA graph needs its buffers in place anyway.
    inputs: torch.Tensor  # (len(stack.seeds) * batch size, 784)
    batch_size: int
    lr: float
    vectors: torch.Tensor | None = None  # native.pixel_vectors of the training set's pixels

    @classmethod
    def of(cls, stack: Stack, n: int, vectors: torch.Tensor | None = None) -> "Epoch":
        device, hyper = stack.active.device, stack.specs[0].hyper
        steps = -(-n // hyper.batch_size)
        dropping, units, dtype = stack.drop is not None, stack.layout.topology.dropout_units, stack.active.dtype
        return cls(
            orders=torch.zeros(len(stack.seeds), n, dtype=torch.int64, device=device),
            keys=torch.zeros(steps, len(stack.specs[stack.drop]), dtype=torch.int64, device=device)
            if dropping
            else None,
            grid=randomness.int32_grid(hyper.batch_size, units, device) if dropping else None,
            masks=torch.empty(len(stack.specs[stack.drop]) * hyper.batch_size * units, dtype=dtype, device=device)
            if dropping
            else None,
            m=torch.zeros_like(stack.active),
            v=torch.zeros_like(stack.active),
            updates=torch.zeros((), dtype=torch.float32, device=device),
            step=torch.zeros((), dtype=torch.int64, device=device),
            positions=torch.arange(hyper.batch_size, device=device),
            loss=torch.zeros(len(stack.specs), dtype=dtype, device=device),
            inputs=torch.empty(len(stack.seeds) * hyper.batch_size, INPUTS, dtype=dtype, device=device),
            batch_size=hyper.batch_size,
            lr=hyper.lr,
            vectors=vectors,
        )

    def begin(self, orders: torch.Tensor, keys: torch.Tensor | None) -> None:
        """A new meta-loop: its orders and keys (from loop_inputs), fresh AdamW, first batch."""
        if orders is not self.orders:
            self.orders.copy_(orders, non_blocking=orders.is_pinned())
        if self.keys is not None:
            self.keys.copy_(keys)
        for fresh in (self.m, self.v, self.updates, self.step, self.loss):
            fresh.zero_()


def dropout_masks(stack: Stack, grid: torch.Tensor, keys: torch.Tensor, batch: int, out=None) -> torch.Tensor:
    """Scaled keep-masks (dropout trials, batch, dropout units) from one key per dropout trial, in
    the first elements of `out` if given (kept contiguous: the fused kernels index them so)."""
    shape = (len(stack.specs[stack.drop]), batch, grid.shape[1])
    out = torch.empty(math.prod(shape), dtype=stack.active.dtype, device=grid.device) if out is None else out
    masks = out[: math.prod(shape)].view(shape)
    chunk = MASK_CHUNK if grid.device.type == "cpu" else None
    randomness.scaled_keep_masks(masks, grid[:batch], keys.view(-1), stack.drop_p.view(-1), chunk)
    return masks


def _labels(stack: Stack, data: MNIST, idx: torch.Tensor) -> torch.Tensor:
    y = data.y_train[idx]
    return y if len(stack.seeds) == len(stack.specs) else y.index_select(0, stack.fan_out)


def batch_inputs(stack: Stack, data: MNIST, epoch: Epoch, batch: int):
    """Inputs and labels of the epoch's next `batch` samples (a row per order of stack.seeds),
    the inputs gathered into epoch.inputs. Where trials share an order, labels, and inputs unless
    shared, are fanned out to every trial. Tensor operations only: a CUDA graph replays them."""
    idx = epoch.orders.index_select(1, torch.add(epoch.positions[:batch], epoch.step, alpha=epoch.batch_size))
    x = torch.index_select(data.x_train, 0, idx.reshape(-1), out=epoch.inputs[: idx.numel()]).view(*idx.shape, -1)
    if len(stack.seeds) < len(stack.specs) and not stack.share_inputs:
        x = x.index_select(0, stack.fan_out)
    return x, _labels(stack, data, idx)


def batch_rows(stack: Stack, data: MNIST, epoch: Epoch, batch: int):
    """batch_inputs for native's path, which reads the training set's rows and labels in place
    (its pixels where the data keeps them: float32 on a CPU, MNIST.to) through a slice of the
    sample orders: the labels come with the rows (native.Rows), not as a tensor of their own."""
    start = int(epoch.step) * epoch.batch_size
    idx = epoch.orders[:, start : start + batch]
    if data.pixels_train is None:
        return native.Rows(data.x_train, idx, labels=data.y_train), None
    return native.Rows(data.pixels_train, idx, NORMALISE, data.y_train, epoch.vectors), None


@dataclass(frozen=True)
class StepFunctions:
    """How a step computes: its gradients (ops', or fused kernels' of the same signature), the
    dropout masks they take and their inputs."""

    gradients: Callable = ops.gradients
    masks: Callable = dropout_masks
    inputs: Callable = batch_inputs


NATIVE_STEP = StepFunctions(native.gradients, native.dropout, batch_rows)
CPU_STEP = StepFunctions(masks=native.keep_masks)


def step_functions(stack: Stack, fused: bool = True) -> StepFunctions:
    """How a stack's steps compute: through chain.cpp where it has a chain (with `fused`), else
    through ops, whose dropout masks chain.cpp draws on a CPU where it builds."""
    if fused and native.supported(stack):
        return NATIVE_STEP
    return CPU_STEP if native.draws_masks(stack) else StepFunctions()


def train_step(stack: Stack, epoch: Epoch, data: MNIST, batch: int, functions: StepFunctions = StepFunctions()) -> None:
    """One step of `batch` samples for every trial of the stack: gather, dropout masks, forward,
    loss, backward, AdamW."""
    x, y = functions.inputs(stack, data, epoch, batch)
    masks = None
    if epoch.keys is not None:
        masks = functions.masks(stack, epoch.grid, epoch.keys.index_select(0, epoch.step.view(1)), batch, epoch.masks)
    functions.gradients(stack, x, y, masks, epoch.loss)
    ops.adamw_step(stack, epoch.m, epoch.v, epoch.updates, epoch.lr)
    epoch.step.add_(1)


class Steps:
    """The training steps of a group of stacks, a meta-loop's epoch at a time: begin(loop), then
    one call per batch size of `batches`, which steps each stack in turn, as step_functions says.
    psa.engine.batched.cuda's GraphSteps replays the same steps from a CUDA graph."""

    def __init__(self, stacks: list[Stack], data: MNIST, fused: bool = True):
        self.stacks, self.data, self.n = stacks, data, len(data.x_train)
        size = stacks[0].specs[0].hyper.batch_size  # the same for every stack of a group
        self.batches = [min(size, self.n - start) for start in range(0, self.n, size)]
        self.functions = [step_functions(stack, fused) for stack in stacks]
        fusing = data.pixels_train is not None and NATIVE_STEP in self.functions
        vectors = native.pixel_vectors(data.pixels_train) if fusing else None
        self.epochs = [Epoch.of(stack, self.n, vectors) for stack in stacks]

    def inputs(self, loop: int) -> list:
        """loop_inputs of every stack for `loop`, the orders written where the epoch keeps them."""
        return [
            loop_inputs(stack, loop, self.n, len(self.batches), epoch.orders)
            for stack, epoch in zip(self.stacks, self.epochs)
        ]

    def begin(self, loop: int) -> None:
        for epoch, (orders, keys) in zip(self.epochs, self.inputs(loop)):
            epoch.begin(orders, keys)

    def losses(self) -> list[list[float]]:
        """Each stack's trials' mean training loss over the epoch just run (the mean of the batch
        means, as psa.engine.reference records it): the loop's one read of the sums off the device."""
        return [(epoch.loss / len(self.batches)).tolist() for epoch in self.epochs]

    def step(self, member: int, batch: int) -> None:
        train_step(self.stacks[member], self.epochs[member], self.data, batch, self.functions[member])

    @torch.no_grad()
    def __call__(self, batch: int) -> None:
        for member in range(len(self.stacks)):
            self.step(member, batch)
