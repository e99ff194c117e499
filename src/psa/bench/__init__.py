"""`psa bench --estimate-sweep`: what the full study grid costs with the batched engine, as the
sweep runs it, against a single-trial reference harness written the way the original study ran
(psa.bench.timing), and how much of the machine's float32 GEMM peak, measured in the same run
(psa.bench.peak), the engine reaches. `--validate` checks the extrapolation against a real
two-meta-loop sweep of some architectures."""

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rich.table import Table

from psa import options
from psa.architecture import Architecture, parse_list, read_configurations
from psa.bench.peak import Repeated, gemm_peak, loop_flops
from psa.bench.timing import GRID_LOOPS, GRID_MODES, GRID_TRIALS, engine_groups, time_engine, time_reference
from psa.costmodel import model_loop_seconds
from psa.data import MNIST, load_mnist
from psa.device import memory_budget, pick_device, set_threads
from psa.files import write_json
from psa.progress import make_console
from psa.published import CONFIGURATIONS
from psa.settings import RunSettings
from psa.store import Store
from psa.sweep import pack_limit, run_sweep
from psa.trial import SEEDINGS

__all__ = ["configure", "engine_groups", "time_engine", "validate"]


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


def measure_group(group, scale, data: MNIST, args, whole_loops: bool) -> tuple[Repeated, ...]:
    """The group's seconds per meta-loop and per setup, the GEMM peak and its share of it, each
    `args.repeats` times, every timing right after a peak measurement: both then see the same
    machine, however busy it is at that moment."""
    device = data.x_train.device
    flops = loop_flops(group, scale, len(data.x_train), len(data.x_val))
    loops, setups, peaks, shares = [], [], [], []
    for _ in range(args.repeats):
        peak = gemm_peak(device)
        engine = time_engine(group, scale, data, args.steps, args.val_samples, whole_loops)
        loops.append(engine["loop"])
        peaks.append(peak)
        setups.append(engine["setup"])
        shares.append(flops / engine["loop"] / peak)
    return tuple(Repeated(tuple(values)) for values in (loops, setups, peaks, shares))


def _with_spread(value: Repeated, text: str) -> str:
    return f"{text} ±{50 * value.spread:.0f}%" if len(value.values) > 1 else text


def estimate_sweep(args) -> None:
    console = make_console()
    device = pick_device(args.device)
    threads = set_threads(args.threads)
    torch.set_flush_denormal(True)  # both harnesses, as the engines run (psa.batched.loop.train_stacks)
    archs = parse_list(args.arch) if args.arch else read_configurations(args.configs)
    data = load_mnist(args.data_dir).to(device)
    memory_bytes = memory_budget(device, args.max_memory)
    pack = pack_limit(device, args.pack)
    whole_loops = args.whole_loops if args.whole_loops is not None else device.type == "cuda"
    table = Table(
        title=f"Full-grid estimate on {device} ({threads} threads): {len(archs)} architectures x 6 modes x 10 "
        f"trials x 100 meta-loops (up to {pack} small stacks side by side; median of {args.repeats})"
    )
    columns = ["architectures", "engine s/loop", "reference s/loop/trial", "engine total s", "reference total s"]
    for column in columns + ["ratio"] + (["GFLOP/s", "% of GEMM peak"] if args.verbose else []):
        table.add_column(column, justify="right", overflow="fold")  # a number cut short is wrong
    engine_total = reference_total = grid_flops = 0.0
    peaks = []
    measured = {}  # per architecture, for --json: a group's time shared out by the cost model
    started = time.perf_counter()
    for group, scale in engine_groups(archs, memory_bytes, pack, args.seeding):
        loop, setup, peak, share = measure_group(group, scale, data, args, whole_loops)
        peaks += peak.values
        names = [str(stack[0].arch) for stack in group]
        reference = sum(time_reference(stack[0].arch, data, args.val_samples) for stack in group)
        cells = len(GRID_MODES) * GRID_TRIALS
        e_total, r_total = setup.median + loop.median * GRID_LOOPS, reference * cells * GRID_LOOPS
        engine_total, reference_total = engine_total + e_total, reference_total + r_total
        flops = loop_flops(group, scale, len(data.x_train), len(data.x_val))
        grid_flops += flops * GRID_LOOPS
        shares = [model_loop_seconds(stack[0].arch, cells) for stack in group]
        for name, part in zip(names, shares):
            measured[name] = {"loop": loop.median * part / sum(shares), "setup": setup.median * part / sum(shares)}
        row = [", ".join(names), _with_spread(loop, f"{loop.median:.3f}"), f"{reference:.3f}"]
        row += [f"{e_total:.0f}", f"{r_total:.0f}", f"{r_total / e_total:.1f}"]
        if args.verbose:
            row += [f"{flops / loop.median / 1e9:.1f}", _with_spread(share, f"{100 * share.median:.1f}")]
            console.print(
                f"{' + '.join(names)}: engine {loop.median:.3f} s/loop, reference {reference:.3f} s/loop/trial"
            )
        table.add_row(*row)
    peak = Repeated(tuple(peaks))
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
    print(
        f"float32 GEMM peak ({threads} threads): {peak.median / 1e9:.0f} GFLOP/s; engine over the grid: "
        f"{grid_flops / engine_total / 1e9:.0f} GFLOP/s, {100 * grid_flops / engine_total / peak.median:.1f}% of peak"
    )


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
    parser.add_argument(
        "--repeats",
        type=options.whole(1),
        default=1,
        help="time each group this many times, each right after a GEMM peak measurement; the table "
        "gives the median and, after ±, half the spread (default: 1)",
    )
    parser.add_argument("--verbose", action="store_true", help="also each group's GFLOP/s and share of the GEMM peak")
    parser.set_defaults(func=estimate_sweep)
