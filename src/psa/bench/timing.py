"""How long the batched engine takes per meta-loop of the groups the sweep trains, and the
single-trial reference harness written the way the original study ran (DataLoader over in-memory
tensors, one nn.Module per trial, AdamW recreated every loop), both extrapolated from a few real
training steps plus a validation pass."""

import itertools
import math
import statistics
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from psa.engine.batched import device_path, grouping, train_stacks
from psa.engine.batched.stack import Stack
from psa.sweeps.settings import RunSettings
from psa.trial.architecture import Architecture
from psa.trial.data import MNIST
from psa.trial.modes import MODES
from psa.trial.spec import SEEDINGS

GRID_MODES, GRID_TRIALS, GRID_LOOPS = MODES, 10, 100
MIN_TIMED_SECONDS, MIN_STEPS, MAX_STEPS = 0.5, 6, 50
REFERENCE_STEPS = 3  # the single-trial harness's steps are slow and steady (one model, no stacking)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(device: torch.device, run) -> float:
    sync(device)
    started = time.perf_counter()
    run()
    sync(device)
    return time.perf_counter() - started


def _steps_per_epoch(n: int, batch: int) -> float:
    """Full batches plus the partial last one, counted by its share of a full batch."""
    return n // batch + (n % batch) / batch


def engine_groups(archs: list[Architecture], memory_bytes: int, pack: int, seeding: str = SEEDINGS[0]):
    """The stack groups the sweep trains (grouping.stacks_of, grouping.pack), timing only the first stack
    of an architecture split into several: [(group, scale)], scale = trials the group stands for
    over trials timed (1 but where a split architecture's first stack is timed)."""
    firsts = [
        grouping.stacks_of(RunSettings((arch,), GRID_MODES, GRID_TRIALS, seeding=seeding).grid().specs, memory_bytes)[0]
        for arch in archs
    ]
    cells = len(GRID_MODES) * GRID_TRIALS
    return [(group, cells * len(group) / sum(len(stack) for stack in group)) for group in grouping.pack(firsts, pack)]


def time_whole_loops(group: list[list], scale: float, data: MNIST) -> dict:
    """Seconds per meta-loop of a group as the sweep trains it: the second of two real meta-loops
    (the first captures graphs and compiles kernels). Setup: what the first loop took beyond that
    (building the stacks, capture, compilation) and the final test pass."""
    device, marks = data.x_train.device, []

    def mark(stacks, loop, records):
        sync(device)
        marks.append(time.perf_counter())

    started = time.perf_counter()
    seconds(device, lambda: train_stacks(group, data, 2, on_loop=mark))
    loop = marks[1] - marks[0]
    setup = max(marks[0] - started - loop, 0.0) + time.perf_counter() - marks[1]
    return {"loop": loop * scale, "setup": setup * scale}


def time_steps(group: list[list], scale: float, data: MNIST, steps: int, val_samples: int) -> dict:
    """Seconds per meta-loop of a group from a few of its training steps: each of an epoch's first
    steps is timed (at least `steps`, more where a step is fast); a loop costs the mean step times
    the steps of an epoch, plus what the first interval has beyond a step (the epoch's shuffles and
    fresh moments), plus a validation pass."""
    device = data.x_train.device
    started = time.perf_counter()
    stacks = [Stack.of(specs, device, data.x_train.dtype) for specs in group]
    built = time.perf_counter() - started
    training, accuracy = device_path(stacks, data)
    x_val, y_val = data.x_val[:val_samples], data.y_val[:val_samples]

    def step_marks(loop: int, count: int) -> list[float]:
        """perf_counter() when the epoch starts and after each of its first `count` steps."""
        marks = [time.perf_counter()]
        training.begin(loop)
        for batch in training.batches[:count]:
            training(batch)
            marks.append(time.perf_counter())
        return marks

    def validate():
        for stack in stacks:
            accuracy(stack, stack.active, x_val, y_val, grouping.EVAL_CHUNK)

    warm = step_marks(1, 2)  # one-time costs: first touches, allocations
    validate()
    steps = max(steps, MIN_STEPS, min(MAX_STEPS, math.ceil(MIN_TIMED_SECONDS / max(warm[-1] - warm[-2], 1e-6))))
    intervals = [b - a for a, b in itertools.pairwise(step_marks(2, steps))]
    step = statistics.fmean(intervals[1:])
    fixed = max(intervals[0] - step, 0.0)
    val = seconds(device, validate) * len(data.x_val) / val_samples
    per_loop = fixed + step * _steps_per_epoch(len(data.x_train), group[0][0].hyper.batch_size) + val
    # Once per stack, not per loop: building it and the final test pass (as long as a validation).
    return {"loop": per_loop * scale, "setup": (built + val) * scale}


def time_engine(
    group: list[list], scale: float, data: MNIST, steps: int, val_samples: int, whole_loops: bool = False
) -> dict:
    """Seconds per meta-loop ("loop") and once per group ("setup") of a group, times `scale`:
    whole meta-loops (on a GPU, where one takes a second or less), else a few steps."""
    if whole_loops:
        return time_whole_loops(group, scale, data)
    return time_steps(group, scale, data, steps, val_samples)


class ReferenceMLP(nn.Module):
    """The original study's model: Linear -> ReLU -> Dropout per hidden layer, nn.Dropout."""

    def __init__(self, arch: Architecture, dropout: float):
        super().__init__()
        layers, width = [], 784
        for w in arch.widths:
            layers += [nn.Linear(width, w), nn.ReLU(), nn.Dropout(dropout)]
            width = w
        self.net = nn.Sequential(*layers, nn.Linear(width, 10))

    def forward(self, x):
        return self.net(x)


def time_reference(arch: Architecture, data: MNIST, val_samples: int, steps: int = REFERENCE_STEPS) -> float:
    """Seconds per meta-loop of one trial in the single-trial harness (mode dropout: the costliest
    baseline; ablation itself is negligible)."""
    device = data.x_train.device
    model = ReferenceMLP(arch, 0.1).to(device)
    # The original kept the dataset on the host and moved each batch to the device.
    train = DataLoader(TensorDataset(data.x_train.cpu(), data.y_train.cpu()), batch_size=256, shuffle=True)
    val = DataLoader(TensorDataset(data.x_val[:val_samples].cpu(), data.y_val[:val_samples].cpu()), batch_size=1000)
    loss_fn = nn.CrossEntropyLoss()

    def run(count: int) -> float:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)  # recreated every loop
        model.train()
        batches = iter(train)

        def steps():
            for _ in range(count):
                x, y = next(batches)
                loss = loss_fn(model(x.to(device)), y.to(device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

        return seconds(device, steps)

    run(1)
    step = run(steps) / steps
    model.eval()

    def evaluate():
        with torch.no_grad():
            for x, y in val:
                (model(x.to(device)).argmax(1) == y.to(device)).sum().item()

    val_seconds = seconds(device, evaluate) * len(data.x_val) / val_samples
    return step * _steps_per_epoch(len(data.x_train), 256) + val_seconds
