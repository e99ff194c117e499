"""`psa bench --estimate-sweep`: what the full study grid costs with the batched engine, as the
sweep runs it, against a single-trial reference harness written the way the original study ran
(psa.bench.timing), and how much of the machine's float32 GEMM peak, measured in the same run
(psa.bench.peak), the engine reaches. `--validate` checks the extrapolation against a real
two-meta-loop sweep of some architectures, through the sweeps' own run path."""

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.table import Table

from psa.bench.peak import Repeated, gemm_peak, group_flops
from psa.bench.timing import GRID_LOOPS, GRID_MODES, GRID_TRIALS, engine_groups, time_engine, time_reference
from psa.engine.costmodel import model_loop_seconds
from psa.engine.memory import tune_for_training
from psa.files import write_json
from psa.progress import make_console
from psa.sweeps.grid import pack_limit
from psa.sweeps.settings import Machine, RunSettings
from psa.sweeps.sweep import run_grid
from psa.trial.architecture import Architecture
from psa.trial.data import MNIST, load_mnist
from psa.trial.device import memory_budget, pick_device, set_threads
from psa.trial.spec import SEEDINGS

__all__ = ["Machine", "Timing", "Validation", "engine_groups", "estimate_sweep", "time_engine", "validate"]


@dataclass(frozen=True)
class Timing:
    """How a group is timed: `steps` training steps at least (more where a step is fast) and
    `val_samples` validation samples, or two whole meta-loops (default: on a GPU only); each
    group `repeats` times, each right after a GEMM peak measurement."""

    steps: int = 6
    val_samples: int = 2000
    repeats: int = 1
    whole_loops: bool | None = None


@dataclass(frozen=True)
class Validation:
    estimated: float  # seconds the estimate gives the real sweep
    measured: float  # seconds it took
    trained: int  # trials it trained

    @property
    def error(self) -> float:
        return (self.estimated - self.measured) / self.measured


def validate(
    archs: list[Architecture], data: MNIST, machine: Machine, timing: Timing, console, seeding: str = SEEDINGS[0]
) -> Validation:
    """Run the real sweep of some architectures (60 trials each) for two meta-loops, the way
    `psa sweep` runs it, and compare its time with the estimate of that sweep."""
    device = data.x_train.device
    memory_bytes, pack = memory_budget(device, machine.max_memory), pack_limit(device, machine.pack)
    whole_loops = timing.whole_loops if timing.whole_loops is not None else device.type == "cuda"
    estimated = 0.0
    for group, scale in engine_groups(archs, memory_bytes, pack, seeding):
        engine = time_engine(group, scale, data, timing.steps, timing.val_samples, whole_loops)
        estimated += engine["setup"] + 2 * engine["loop"]
    run = RunSettings(tuple(archs), GRID_MODES, GRID_TRIALS, meta_loops=2, seeding=seeding)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        done = run_grid(
            run, Path(folder) / "validate.sqlite", machine, command="psa bench --validate", data=data, console=console
        )
        measured = time.perf_counter() - started
    result = Validation(estimated, measured, done["trained"])
    names = ", ".join(str(a) for a in archs)
    console.print(
        f"validation: real sweep of {names} ({60 * len(archs)} trials x 2 meta-loops) took "
        f"{measured:.1f} s, estimated {estimated:.1f} s, error {100 * result.error:+.1f}%"
    )
    return result


def measure_group(group, scale, data: MNIST, timing: Timing, whole_loops: bool) -> tuple[Repeated, ...]:
    """The group's seconds per meta-loop and per setup, the GEMM peak and its share of it, each
    `timing.repeats` times, every timing right after a peak measurement: both then see the same
    machine, however busy it is at that moment."""
    device = data.x_train.device
    flops = group_flops(group, scale, len(data.x_train), len(data.x_val))
    loops, setups, peaks, shares = [], [], [], []
    for _ in range(timing.repeats):
        peak = gemm_peak(device)
        engine = time_engine(group, scale, data, timing.steps, timing.val_samples, whole_loops)
        loops.append(engine["loop"])
        peaks.append(peak)
        setups.append(engine["setup"])
        shares.append(flops / engine["loop"] / peak)
    return tuple(Repeated(tuple(values)) for values in (loops, setups, peaks, shares))


def _with_spread(value: Repeated, text: str) -> str:
    return f"{text} ±{50 * value.spread:.0f}%" if len(value.values) > 1 else text


def estimate_sweep(
    archs: list[Architecture],
    machine: Machine = Machine(),
    timing: Timing = Timing(),
    seeding: str = SEEDINGS[0],
    validate_archs: list[Architecture] | None = None,
    json_path: Path | None = None,
    verbose: bool = False,
) -> None:
    """Time every group of the full grid of `archs` (10 trials x 6 modes x 100 meta-loops each) on
    `machine`'s device; with `validate_archs`, also run their real sweep (validate); with
    `json_path`, write each architecture's seconds per meta-loop there (psa.engine.costmodel reads it)."""
    console = make_console()
    tune_for_training()
    device = pick_device(machine.device)
    threads = set_threads(machine.threads)
    torch.set_flush_denormal(True)  # both harnesses, as the engines run (psa.engine.batched.loop.train_stacks)
    data = load_mnist(machine.data_dir).to(device)
    memory_bytes = memory_budget(device, machine.max_memory)
    pack = pack_limit(device, machine.pack)
    whole_loops = timing.whole_loops if timing.whole_loops is not None else device.type == "cuda"
    table = Table(
        title=f"Full-grid estimate on {device} ({threads} threads): {len(archs)} architectures x 6 modes x 10 "
        f"trials x 100 meta-loops (up to {pack} small stacks side by side; median of {timing.repeats})"
    )
    columns = ["architectures", "engine s/loop", "reference s/loop/trial", "engine total s", "reference total s"]
    for column in columns + ["ratio"] + (["GFLOP/s", "% of GEMM peak"] if verbose else []):
        table.add_column(column, justify="right", overflow="fold")  # a number cut short is wrong
    engine_total = reference_total = grid_flops = 0.0
    peaks = []
    measured = {}  # per architecture, for --json: a group's time shared out by the cost model
    started = time.perf_counter()
    for group, scale in engine_groups(archs, memory_bytes, pack, seeding):
        loop, setup, peak, share = measure_group(group, scale, data, timing, whole_loops)
        peaks += peak.values
        names = [str(stack[0].arch) for stack in group]
        reference = sum(time_reference(stack[0].arch, data, timing.val_samples) for stack in group)
        cells = len(GRID_MODES) * GRID_TRIALS
        e_total, r_total = setup.median + loop.median * GRID_LOOPS, reference * cells * GRID_LOOPS
        engine_total, reference_total = engine_total + e_total, reference_total + r_total
        flops = group_flops(group, scale, len(data.x_train), len(data.x_val))
        grid_flops += flops * GRID_LOOPS
        shares = [model_loop_seconds(stack[0].arch, cells) for stack in group]
        for name, part in zip(names, shares):
            measured[name] = {"loop": loop.median * part / sum(shares), "setup": setup.median * part / sum(shares)}
        row = [", ".join(names), _with_spread(loop, f"{loop.median:.3f}"), f"{reference:.3f}"]
        row += [f"{e_total:.0f}", f"{r_total:.0f}", f"{r_total / e_total:.1f}"]
        if verbose:
            row += [f"{flops / loop.median / 1e9:.1f}", _with_spread(share, f"{100 * share.median:.1f}")]
            console.print(
                f"{' + '.join(names)}: engine {loop.median:.3f} s/loop, reference {reference:.3f} s/loop/trial"
            )
        table.add_row(*row)
    peak = Repeated(tuple(peaks))
    console.print(table)
    console.print(f"(measured in {time.perf_counter() - started:.0f} s)")
    if validate_archs:
        validate(validate_archs, data, machine, timing, console, seeding)
    if json_path:
        write_json(
            json_path,
            {
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
                "seeding": seeding,
                "archs": measured,
                "engine_total": engine_total,
            },
        )
        console.print(f"wrote {json_path} (psa cloud launch --cost-model reads it)")
    print(f"estimated full sweep, engine: {engine_total:.0f} s")
    print(f"estimated full sweep, single-trial reference: {reference_total:.0f} s")
    print(f"ratio: {reference_total / engine_total:.2f}")
    print(
        f"float32 GEMM peak ({threads} threads): {peak.median / 1e9:.0f} GFLOP/s; engine over the grid: "
        f"{grid_flops / engine_total / 1e9:.0f} GFLOP/s, {100 * grid_flops / engine_total / peak.median:.1f}% of peak"
    )
