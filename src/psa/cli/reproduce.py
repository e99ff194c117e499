"""`psa reproduce`, the main job: a sweep, its exports, then every table and figure of the study
made from those exports (psa.study.publish), all into one folder. The quick profile (default)
trains five small architectures in a minute or two on a CPU; --full runs the paper's whole grid.
Its results store is its own (`<out>/reproduce.sqlite` unless --store), and its exports hold only
its own grid."""

from pathlib import Path

from psa import files
from psa.cli import options
from psa.cli.study import printed
from psa.errors import PSAError

QUICK_ARCHS = "1*32,2*16,4*8,8*4,16*2"  # small, parameter-matched-ish, one per depth regime
QUICK, FULL = (3, 10), (10, 100)  # trials and meta-loops of the quick profile and of the paper


def reproduce(args) -> None:
    from psa.progress import make_console
    from psa.study.publish import report
    from psa.sweeps.sweep import run_grid

    console = make_console()
    out = files.output_folder(args.out, "--out")
    store = Path(args.store or out / "reproduce.sqlite")
    if args.full:
        flags = (("--arch", args.arch), ("--configs", args.configs))
        flags += (("--trials", args.trials), ("--meta-loops", args.meta_loops))
        given = [flag for flag, value in flags if value is not None]
        if given:
            raise PSAError(f"--full runs the paper's whole grid: leave out {' and '.join(given)}")
        args.configs, args.trials, args.meta_loops = options.CONFIGURATIONS, *FULL
    else:
        args.trials, args.meta_loops = args.trials or QUICK[0], args.meta_loops or QUICK[1]
    run = options.run_settings(args, default_archs=QUICK_ARCHS)
    console.print(
        f"[bold]psa reproduce[/] ({'the full study' if args.full else 'quick profile'}): "
        f"{run.trials} trials x {run.meta_loops} meta-loops per cell"
    )
    run_grid(run, store, options.machine(args), command=args.command_line, console=console)
    archs = [str(a) for a in dict.fromkeys(run.archs)]
    written, skipped = report(out, run.family, store, run.comparable(), args.data_dir, archs, html=True)
    printed(written, skipped)


def configure(parser) -> None:
    options.add_run(parser, *QUICK, archs_default=f'"{QUICK_ARCHS}"')
    parser.set_defaults(trials=None, meta_loops=None)  # the profile's (QUICK or FULL): given, --full refuses them
    options.add_machine(parser)
    parser.add_argument("--store", default=None, help="results store (default: reproduce.sqlite in the --out folder)")
    parser.add_argument(
        "--full",
        action="store_true",
        help="the paper's whole grid: 98 architectures x 6 modes x 10 trials x 100 meta-loops",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("results"), help="where exports and figures go (default: results/)"
    )
    parser.set_defaults(func=reproduce)
