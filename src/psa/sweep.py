"""Sweeps: a grid of architectures x modes x trials, trained a whole architecture at a time by
the batched engine, written trial by trial into the results store. Running the same command
again skips what is complete and finishes the rest."""

import time
from pathlib import Path

import torch

from psa import PSAError, batched
from psa.architecture import Architecture, read_configurations
from psa.engine import pick_device
from psa.modes import MODES, parse_modes
from psa.results import read_series
from psa.store import DEFAULT_STORE, Store
from psa.trial import Hyper, TrialSpec, trial_seed

QUICK_ARCHS = "1*32,2*16,4*8,8*4,16*2"  # small, parameter-matched-ish, one per depth regime


def plan(archs: list[Architecture], modes, trials: int, family: str, base_seed: int, hyper: Hyper):
    """{arch: [TrialSpec]} for the grid; trial k of every mode shares its seed (paired trials)."""
    return {arch: [TrialSpec(arch, family, mode, t, trial_seed(base_seed, arch, t), hyper)
                   for mode in modes for t in range(trials)] for arch in archs}


def memory_budget(device: torch.device, gib: float | None) -> int:
    if gib is not None:
        return int(gib * 2**30)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.6)
    return 2 << 30


def pack_limit(device: torch.device, value: int | None) -> int:
    """Stacks trained side by side (batched.pack): a GPU runs them concurrently, a CPU would
    only interleave them."""
    if value is not None:
        if value < 1:
            raise PSAError("--pack must be at least 1")
        return value
    return 8 if device.type == "cuda" else 1


def run_sweep(store: Store, grid: dict, meta_loops: int, device: torch.device, memory_bytes: int,
              data=None, command: str = "psa sweep", console=None, pack: int = 1) -> dict[str, int]:
    """Train every trial of `grid` that the store lacks, in stacks that fit `memory_bytes`, up to
    `pack` small stacks side by side; returns counts of what was done."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    from psa.data import load_mnist

    console = console or Console()
    todo = {arch: [s for s in specs if not store.is_complete(s, meta_loops)] for arch, specs in grid.items()}
    total = sum(len(specs) for specs in grid.values())
    pending = sum(len(specs) for specs in todo.values())
    console.print(f"{total} trials in the grid, {total - pending} already complete in {store.path}, "
                  f"{pending} to train on {device}")
    if not pending:
        return {"total": total, "trained": 0}
    sweep_id = store.start_sweep(command, {"meta_loops": meta_loops, "device": str(device)})
    data = (data or load_mnist()).to(device)
    steps = -(-len(data.x_train) // next(iter(grid.values()))[0].hyper.batch_size)
    stacks = [stack for specs in todo.values() if specs for stack in batched.stacks_of(specs, memory_bytes)]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        overall = progress.add_task("trials", total=pending)
        loops = progress.add_task("meta-loops", total=meta_loops)
        batches = progress.add_task("batches", total=steps)
        for group in batched.pack(stacks, pack):
            trials = [spec for stack in group for spec in stack]
            names = ", ".join(str(stack[0].arch) for stack in group)
            progress.update(overall, description=f"trials ({names}: {len(trials)} at once)")
            progress.reset(loops)
            progress.update(batches, total=steps * len(group))  # on_batch counts each stack's steps
            store.mark_running(sweep_id, trials, meta_loops, str(device))

            def on_loop(spec, record, first=trials[0]):
                if spec is first:
                    progress.update(loops, completed=record.loop)
                    progress.reset(batches)

            for results in batched.train_stacks(group, data, meta_loops, on_loop,
                                                on_batch=lambda: progress.advance(batches)):
                for result in results:
                    store.record(sweep_id, result, meta_loops)
            progress.advance(overall, len(trials))
    return {"total": total, "trained": pending}


def _grid_from_args(args):
    if args.arch and args.configs:
        raise PSAError("give either --arch or --configs, not both")
    if args.arch:
        archs = [Architecture.parse(a) for a in args.arch.split(";" if "[" in args.arch else ",")]
    else:
        archs = read_configurations(args.configs or "reproduction/configurations.txt")
    hyper = Hyper(args.lr, args.batch_size, args.weight_decay, args.dropout)
    if args.trials < 1 or args.meta_loops < 1:
        raise PSAError("--trials and --meta-loops must be at least 1")
    return plan(archs, parse_modes(args.modes), args.trials, args.model, args.seed, hyper)


def sweep(args) -> None:
    from rich.console import Console

    grid = _grid_from_args(args)
    device = pick_device(args.device)
    store = Store(args.store)
    started = time.perf_counter()
    try:
        done = run_sweep(store, grid, args.meta_loops, device, memory_budget(device, args.max_memory),
                         command="psa sweep " + " ".join(f"{k}={v}" for k, v in sorted(vars(args).items())
                                                         if k != "func"),
                         pack=pack_limit(device, args.pack))
    finally:
        store.close()
    Console().print(f"trained {done['trained']} trials in {time.perf_counter() - started:.1f} s; "
                    f"store: {args.store} (export with `psa export --store {args.store}`)")


def add_grid_arguments(parser, trials: int, meta_loops: int) -> None:
    parser.add_argument("--configs", default=None, help="configurations file, one L*W per line "
                        "(default: reproduction/configurations.txt)")
    parser.add_argument("--arch", default=None, help='architectures, e.g. "1*16,2*8" (or "[4*4, 2*8];[1*8]")')
    parser.add_argument("--modes", default="all", help="comma-separated modes (default: all six)")
    parser.add_argument("--trials", type=int, default=trials, help=f"trials per cell (default: {trials})")
    parser.add_argument("--meta-loops", type=int, default=meta_loops, help=f"default: {meta_loops}")
    parser.add_argument("--model", default="simplemlp", choices=("simplemlp", "resmlp"))
    parser.add_argument("--seed", type=int, default=2025, help="base seed; trial seeds derive from it")
    parser.add_argument("--device", choices=("cpu", "cuda", "mps"), default=None,
                        help="default: CUDA, else MPS, else CPU")
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"results store (default: {DEFAULT_STORE})")
    parser.add_argument("--max-memory", type=float, default=None,
                        help="GiB one stack of trials may use (default: 2 on CPU, 60%% of free GPU memory)")
    parser.add_argument("--pack", type=int, default=None,
                        help="stacks of small architectures trained side by side (default: 8 on a GPU, 1 elsewhere)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="mode decay only")
    parser.add_argument("--dropout", type=float, default=0.1, help="mode dropout only")


def configure(parser) -> None:
    add_grid_arguments(parser, trials=10, meta_loops=100)
    parser.set_defaults(func=sweep)


# ----------------------------------------------------------------------------- psa reproduce

def reproduce(args) -> None:
    """Sweep, export, then every table and figure of the study from the exports."""
    from rich.console import Console

    from psa.store import export

    console = Console()
    if args.full:
        args.configs, args.arch = args.configs or "reproduction/configurations.txt", None
        args.trials, args.meta_loops = 10, 100
    elif not args.configs and not args.arch:
        args.arch = QUICK_ARCHS
    console.print(f"[bold]psa reproduce[/] ({'the full study' if args.full else 'quick profile'}): "
                  f"{args.trials} trials x {args.meta_loops} meta-loops per cell")
    sweep(args)
    store = Store(args.store)
    try:
        archs = [str(a) for a in _grid_from_args(args)]
        written = export(store, Path(args.out), archs)
    finally:
        store.close()
    written += publish(Path(args.out), args.model, archs, set(parse_modes(args.modes)) == set(MODES))
    for path in written:
        console.print(f"wrote {path}")


def publish(out: Path, family: str, archs: list[str], all_modes: bool) -> list[Path]:
    """The study's tables and figures from the exports in `out` (DESIGN/TOOLS file names)."""
    import json

    from psa import figures, regimes, report
    from psa.analysis import validation_zeror
    from psa.results import FAMILY_TITLES, read_summary, write_text_atomic

    zeror = validation_zeror()
    configs = out / "configurations.txt"
    write_text_atomic(configs, "\n".join(archs) + "\n")
    asymmetric = Path("reproduction/asymmetric.txt")
    summary, trials = out / f"psa_{family}_summary.md", out / f"psa_{family}_trials.md"
    title = FAMILY_TITLES[family]
    tables = {
        out / f"{title}_Table_Accuracy.tex": report.accuracy_table(
            read_summary(summary), archs, f"Mean Peak Accuracy (\\%) for {title} Architectures", "tab:results_summary_stats"),
    }
    if asymmetric.is_file():
        tables[out / f"{title}_Table_Architectures.tex"] = report.architecture_table(configs, asymmetric, family)
    for path, text in tables.items():
        write_text_atomic(path, text)
    written = list(tables)
    written.append(figures.design_space_figure(configs, out / f"{title}_Testing_Design_Space.png", family))
    if all_modes:
        written += figures.heatmap_figures(configs, trials, out, family, zeror)
        labels = regimes.get_all_regime_classifications(configs, trials, zeror)
        regimes_path = out / f"psa_{family}_regimes.json"
        write_text_atomic(regimes_path, json.dumps(labels, indent=2) + "\n")
        written.append(regimes_path)
    rows = read_series(out / f"psa_{family}_trials_convergence.md")
    names = figures.regime_names(trials, zeror) if all_modes else {}
    targets = [archs[0], archs[-1]] if len(archs) > 1 else archs
    written.append(figures.convergence_figure(rows, targets, out / f"{title}_Plot_Convergence.png", zeror, names))
    written.append(figures.breakthrough_figure(rows, figures.late_breakthroughs(rows), out / f"{title}_Plot_Late_Breakthrough.png", zeror, names))
    return written


def configure_reproduce(parser) -> None:
    add_grid_arguments(parser, trials=3, meta_loops=10)
    parser.add_argument("--full", action="store_true",
                        help="the paper's whole grid: 98 architectures x 6 modes x 10 trials x 100 meta-loops")
    parser.add_argument("--out", default="results", help="where exports and figures go (default: results/)")
    parser.set_defaults(func=reproduce)
