"""`psa bench --estimate-sweep`: what the full study grid costs with the batched engine, as the
sweep runs it, against a single-trial reference harness written the way the original study ran
(DataLoader over in-memory tensors, one nn.Module per trial, AdamW recreated every loop). Both
are timed on a few real training steps plus a validation pass per architecture and extrapolated;
`--validate` checks the extrapolation against a real two-meta-loop sweep of some architectures."""

import argparse
import itertools
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.table import Table
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from psa import options
from psa.architecture import Architecture, parse_list, read_configurations
from psa.batched import grouping, train_stacks
from psa.batched.loop import runner
from psa.batched.stack import Stack
from psa.costmodel import model_loop_seconds
from psa.data import MNIST, load_mnist
from psa.device import memory_budget, pick_device, set_threads
from psa.files import write_json
from psa.modes import MODES
from psa.progress import make_console
from psa.published import CONFIGURATIONS
from psa.settings import RunSettings
from psa.store import Store
from psa.sweep import pack_limit, run_sweep
from psa.topology import parameter_count
from psa.trial import SEEDINGS

GRID_MODES, GRID_TRIALS, GRID_LOOPS = MODES, 10, 100
MIN_TIMED_SECONDS, MIN_STEPS, MAX_STEPS = 0.5, 6, 50
REFERENCE_STEPS = 3  # the single-trial harness's steps are slow and steady (one model, no stacking)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds(device: torch.device, run) -> float:
    _sync(device)
    started = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - started


# Float32 peak FLOP/s of GPUs by a part of their name (dense, no tensor cores), for the verbose table.
PEAK_FP32 = {
    "H100 PCIe": 51e12,
    "H100": 67e12,
    "H200": 67e12,
    "A100": 19.5e12,
    "A10G": 31.2e12,
    "L4": 30.3e12,
    "T4": 8.1e12,
    "V100": 15.7e12,
}


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for part, peak in PEAK_FP32.items() if part in name), None)


def loop_flops(group: list[list], scale: float, train: int, val: int) -> float:
    """Arithmetic of one meta-loop of the trials a group stands for: per sample and weight, 2
    FLOPs forward and 4 backward in training, 2 in validation."""
    return scale * sum(len(stack) * parameter_count(stack[0].arch) for stack in group) * (6 * train + 2 * val)


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
        _sync(device)
        marks.append(time.perf_counter())

    started = time.perf_counter()
    _seconds(device, lambda: train_stacks(group, data, 2, on_loop=mark))
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
    training, accuracy = runner(stacks, data)
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
    val = _seconds(device, validate) * len(data.x_val) / val_samples
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
        _sync(device)
        started = time.perf_counter()
        for _ in range(count):
            x, y = next(batches)
            loss = loss_fn(model(x.to(device)), y.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        _sync(device)
        return time.perf_counter() - started

    run(1)
    step = run(steps) / steps
    model.eval()
    _sync(device)
    started = time.perf_counter()
    with torch.no_grad():
        for x, y in val:
            (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
    _sync(device)
    val_seconds = (time.perf_counter() - started) * len(data.x_val) / val_samples
    return step * _steps_per_epoch(len(data.x_train), 256) + val_seconds


def validate(
    archs: list[Architecture],
    data: MNIST,
    device,
    memory_bytes: int,
    pack: int,
    steps: int,
    val_samples: int,
    whole_loops: bool,
    console,
    seeding: str = SEEDINGS[0],
) -> float:
    """Run the real sweep of some architectures (60 trials each) for two meta-loops; relative
    error of the estimate of that sweep."""
    estimated = 0.0
    for group, scale in engine_groups(archs, memory_bytes, pack, seeding):
        engine = time_engine(group, scale, data, steps, val_samples, whole_loops)
        estimated += engine["setup"] + 2 * engine["loop"]
    run = RunSettings(tuple(archs), GRID_MODES, GRID_TRIALS, meta_loops=2, seeding=seeding)
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "validate.sqlite")
        started = time.perf_counter()
        run_sweep(store, run, device, memory_bytes, data, "psa bench --validate", console, pack)
        measured = time.perf_counter() - started
        store.close()
    error = (estimated - measured) / measured
    names = ", ".join(str(a) for a in archs)
    console.print(
        f"validation: real sweep of {names} ({60 * len(archs)} trials x 2 meta-loops) took "
        f"{measured:.1f} s, estimated {estimated:.1f} s, error {100 * error:+.1f}%"
    )
    return error


def estimate_sweep(args) -> None:
    console = make_console()
    device = pick_device(args.device)
    set_threads(args.threads)
    torch.set_flush_denormal(True)  # both harnesses, as the engines run (psa.batched.loop.train_stacks)
    archs = parse_list(args.arch) if args.arch else read_configurations(args.configs)
    data = load_mnist(args.data_dir).to(device)
    memory_bytes = memory_budget(device, args.max_memory)
    pack = pack_limit(device, args.pack)
    whole_loops = args.whole_loops if args.whole_loops is not None else device.type == "cuda"
    table = Table(
        title=f"Full-grid estimate on {device}: {len(archs)} architectures x 6 modes x 10 trials x "
        f"100 meta-loops (up to {pack} small stacks side by side)"
    )
    peak = peak_flops(device)
    columns = [
        "architectures",
        "engine s/loop",
        "reference s/loop/trial",
        "engine total s",
        "reference total s",
        "ratio",
    ] + (["GFLOP/s"] + ["% of FP32 peak"] * (peak is not None) if args.verbose else [])
    for column in columns:
        table.add_column(column, justify="right")
    engine_total = reference_total = 0.0
    measured = {}  # per architecture, for --json: a group's time shared out by the cost model
    started = time.perf_counter()
    for group, scale in engine_groups(archs, memory_bytes, pack, args.seeding):
        engine = time_engine(group, scale, data, args.steps, args.val_samples, whole_loops)
        names = [str(stack[0].arch) for stack in group]
        reference = sum(time_reference(stack[0].arch, data, args.val_samples) for stack in group)
        cells = len(GRID_MODES) * GRID_TRIALS
        e_total, r_total = engine["setup"] + engine["loop"] * GRID_LOOPS, reference * cells * GRID_LOOPS
        engine_total, reference_total = engine_total + e_total, reference_total + r_total
        shares = [model_loop_seconds(stack[0].arch, cells) for stack in group]
        for name, share in zip(names, shares):
            measured[name] = {
                "loop": engine["loop"] * share / sum(shares),
                "setup": engine["setup"] * share / sum(shares),
            }
        row = [
            ", ".join(names),
            f"{engine['loop']:.3f}",
            f"{reference:.3f}",
            f"{e_total:.0f}",
            f"{r_total:.0f}",
            f"{r_total / e_total:.1f}",
        ]
        if args.verbose:
            achieved = loop_flops(group, scale, len(data.x_train), len(data.x_val)) / engine["loop"]
            row += [f"{achieved / 1e9:.1f}"] + ([f"{100 * achieved / peak:.1f}"] if peak else [])
        table.add_row(*row)
        if args.verbose:
            console.print(
                f"{' + '.join(names)}: engine {engine['loop']:.3f} s/loop, reference {reference:.3f} s/loop/trial"
            )
    console.print(table)
    console.print(f"(measured in {time.perf_counter() - started:.0f} s)")
    if args.validate:
        chosen = parse_list(args.validate_arch) if args.validate_arch else archs[:1]
        validate(
            chosen, data, device, memory_bytes, pack, args.steps, args.val_samples, whole_loops, console, args.seeding
        )
    if args.json:
        write_json(
            args.json,
            {
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
                "seeding": args.seeding,
                "archs": measured,
                "engine_total": engine_total,
            },
        )
        console.print(f"wrote {args.json} (psa cloud launch --cost-model reads it)")
    print(f"estimated full sweep, engine: {engine_total:.0f} s")
    print(f"estimated full sweep, single-trial reference: {reference_total:.0f} s")
    print(f"ratio: {reference_total / engine_total:.2f}")


def configure(parser) -> None:
    parser.add_argument(
        "--estimate-sweep",
        action="store_true",
        required=True,
        help="estimate the full grid with the batched engine and the single-trial reference",
    )
    parser.add_argument("--configs", default=CONFIGURATIONS, help="architectures (default: the published study's 98)")
    parser.add_argument("--arch", default=None, help='only these architectures, e.g. "1*16,2048*1"')
    options.add_device(parser)
    options.add_threads(parser)
    parser.add_argument(
        "--steps",
        type=options.whole(1),
        default=6,
        help="training steps timed at least per architecture, more where a step is fast "
        "(default: 6; a GPU times whole meta-loops)",
    )
    parser.add_argument(
        "--val-samples",
        type=options.whole(1),
        default=2000,
        help="validation samples timed, scaled to the 10,000 of a real pass (default: 2000)",
    )
    parser.add_argument("--max-memory", type=options.POSITIVE, default=None, help="GiB per stack, as for psa sweep")
    parser.add_argument(
        "--pack", type=options.whole(1), default=None, help="small stacks side by side, as for psa sweep"
    )
    parser.add_argument(
        "--whole-loops",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time two complete meta-loops per group instead of a few steps "
        "(default: on a GPU only, where a loop takes a second or less)",
    )
    parser.add_argument(
        "--validate",
        action="store_true",
        help="also run one architecture's real sweep for two meta-loops and report the error",
    )
    parser.add_argument(
        "--validate-arch", default=None, help='architectures for --validate, e.g. "18*18,17*17" (default: the first)'
    )
    parser.add_argument(
        "--seeding",
        choices=SEEDINGS,
        default=SEEDINGS[0],
        help="the grid's seeding, as for psa sweep (paired trials share input batches)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write seconds per meta-loop of each architecture (60 trials) to this file",
    )
    options.add_data_dir(parser)
    parser.add_argument("--verbose", action="store_true")
    parser.set_defaults(func=estimate_sweep)
