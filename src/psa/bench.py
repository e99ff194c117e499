"""`psa bench --estimate-sweep`: what the full study grid costs with the batched engine, as the
sweep runs it, against a single-trial reference harness written the way the original study ran
(DataLoader over in-memory tensors, one nn.Module per trial, AdamW recreated every loop). Both
are timed on a few real training steps plus a validation pass per architecture and extrapolated;
`--validate` checks the extrapolation against a real two-meta-loop sweep of one architecture."""

import math
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from psa import PSAError, batched
from psa.architecture import Architecture, read_configurations
from psa.data import MNIST, load_mnist
from psa.engine import pick_device
from psa.modes import MODES
from psa.store import Store
from psa.sweep import memory_budget, plan, run_sweep
from psa.trial import Hyper

GRID_MODES, GRID_TRIALS, GRID_LOOPS = MODES, 10, 100


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _first(data: MNIST, train: int, val: int) -> MNIST:
    return MNIST(data.x_train[:train], data.y_train[:train], data.x_val[:val], data.y_val[:val],
                 data.x_test, data.y_test, data.y_full_train, data.train_indices, data.val_indices, data.source)


def _steps_per_epoch(n: int, batch: int) -> float:
    """Full batches plus the partial last one, counted by its share of a full batch."""
    return n // batch + (n % batch) / batch


def time_engine(arch: Architecture, data: MNIST, steps: int, val_samples: int, memory_bytes: int) -> dict:
    """Seconds per meta-loop of the whole (arch x 6 modes x 10 trials) cell group, as the sweep
    runs it: stacks chunked to the memory budget, each timed on `steps` real steps."""
    specs = batched.order_specs(plan([arch], GRID_MODES, GRID_TRIALS, "simplemlp", 0, Hyper())[arch])
    size = batched.chunk_size(specs, memory_bytes)
    stack = batched.Stack(specs[:size], data.x_train.device, data.x_train.dtype)
    device = data.x_train.device
    epoch, evaluate = batched.epoch_function(device), batched.accuracy_function(device)
    batch = specs[0].hyper.batch_size
    short = _first(data, batch * steps, val_samples)
    epoch(stack, short, 1)  # warm-up: graph capture and kernel compilation on CUDA
    evaluate(stack, stack.active, short.x_val, short.y_val, 1000)
    _sync(device)
    started = time.perf_counter()
    epoch(stack, short, 2)
    _sync(device)
    step = (time.perf_counter() - started) / steps
    started = time.perf_counter()
    evaluate(stack, stack.active, short.x_val, short.y_val, 1000)
    _sync(device)
    val = (time.perf_counter() - started) * len(data.x_val) / val_samples
    per_stack = step * _steps_per_epoch(len(data.x_train), batch) + val
    return {"stack": size, "stacks": math.ceil(len(specs) / size), "loop": per_stack * len(specs) / size}


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


def time_reference(arch: Architecture, data: MNIST, steps: int, val_samples: int) -> float:
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


def validate(arch: Architecture, data: MNIST, device, memory_bytes: int, estimate_loop: float, console) -> float:
    """Run the real sweep of one architecture (60 trials) for two meta-loops; relative error of
    the estimate."""
    grid = plan([arch], GRID_MODES, GRID_TRIALS, "simplemlp", 0, Hyper())
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "validate.sqlite")
        started = time.perf_counter()
        run_sweep(store, grid, 2, device, memory_bytes, data, "psa bench --validate", console)
        measured = time.perf_counter() - started
        store.close()
    estimated = 2 * estimate_loop
    error = (estimated - measured) / measured
    console.print(f"validation: real sweep of {arch} (60 trials x 2 meta-loops) took {measured:.1f} s, "
                  f"estimated {estimated:.1f} s, error {100 * error:+.1f}%")
    return error


def estimate_sweep(args) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    device = pick_device(args.device)
    archs = ([Architecture.parse(a) for a in args.arch.split(",")] if args.arch
             else read_configurations(args.configs))
    data = load_mnist(args.data_dir).to(device)
    memory_bytes = memory_budget(device, args.max_memory)
    table = Table(title=f"Full-grid estimate on {device}: {len(archs)} architectures x 6 modes x 10 trials x 100 meta-loops")
    for column in ("architecture", "stacks", "engine s/loop", "reference s/loop/trial", "engine total s",
                   "reference total s", "ratio"):
        table.add_column(column, justify="right")
    engine_total = reference_total = 0.0
    per_arch = {}
    started = time.perf_counter()
    for arch in archs:
        engine = time_engine(arch, data, args.steps, args.val_samples, memory_bytes)
        reference = time_reference(arch, data, args.steps, args.val_samples)
        cells = len(GRID_MODES) * GRID_TRIALS
        e_total, r_total = engine["loop"] * GRID_LOOPS, reference * cells * GRID_LOOPS
        engine_total, reference_total = engine_total + e_total, reference_total + r_total
        per_arch[str(arch)] = engine["loop"]
        table.add_row(str(arch), f"{engine['stacks']} x {engine['stack']}", f"{engine['loop']:.3f}",
                      f"{reference:.3f}", f"{e_total:.0f}", f"{r_total:.0f}", f"{r_total / e_total:.1f}")
        if args.verbose:
            console.print(f"{arch}: engine {engine['loop']:.3f} s/loop, reference {reference:.3f} s/loop/trial")
    console.print(table)
    console.print(f"(measured in {time.perf_counter() - started:.0f} s)")
    if args.validate:
        arch = Architecture.parse(args.validate_arch) if args.validate_arch else archs[0]
        loop = per_arch.get(str(arch)) or time_engine(arch, data, args.steps, args.val_samples, memory_bytes)["loop"]
        validate(arch, data, device, memory_bytes, loop, console)
    print(f"estimated full sweep, engine: {engine_total:.0f} s")
    print(f"estimated full sweep, single-trial reference: {reference_total:.0f} s")
    print(f"ratio: {reference_total / engine_total:.2f}")


def configure(parser) -> None:
    parser.add_argument("--estimate-sweep", action="store_true", required=True,
                        help="estimate the full grid with the batched engine and the single-trial reference")
    parser.add_argument("--configs", default="reproduction/configurations.txt")
    parser.add_argument("--arch", default=None, help='only these architectures, e.g. "1*16,2048*1"')
    parser.add_argument("--device", choices=("cpu", "cuda", "mps"), default=None)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per architecture (default: 3)")
    parser.add_argument("--val-samples", type=int, default=2000,
                        help="validation samples timed, scaled to the 10,000 of a real pass (default: 2000)")
    parser.add_argument("--max-memory", type=float, default=None, help="GiB per stack, as for psa sweep")
    parser.add_argument("--validate", action="store_true",
                        help="also run one architecture's real sweep for two meta-loops and report the error")
    parser.add_argument("--validate-arch", default=None, help="architecture for --validate (default: the first)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--verbose", action="store_true")
    parser.set_defaults(func=estimate_sweep)
