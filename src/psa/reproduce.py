"""`psa reproduce`, the main job: a sweep, its exports, then every table and figure of the study
made from those exports (psa.publish), all into one folder. The quick profile (default) trains five small
architectures in a minute or two on a CPU; --full runs the paper's whole grid. Its results store
is its own (`<out>/reproduce.sqlite` unless --store), and its exports hold only its own grid."""

from pathlib import Path

from psa import files, settings
from psa.export import export
from psa.modes import MODES
from psa.progress import make_console
from psa.publish import publish
from psa.published import CONFIGURATIONS
from psa.store import Store
from psa.sweep import add_arguments, sweep

QUICK_ARCHS = "1*32,2*16,4*8,8*4,16*2"  # small, parameter-matched-ish, one per depth regime


def reproduce(args) -> None:
    console = make_console()
    files.output_folder(args.out, "--out")
    args.store = args.store or str(Path(args.out) / "reproduce.sqlite")
    if args.full:
        args.configs, args.arch = args.configs or CONFIGURATIONS, None
        args.trials, args.meta_loops = 10, 100
    elif not args.configs and not args.arch:
        args.arch = QUICK_ARCHS
    console.print(
        f"[bold]psa reproduce[/] ({'the full study' if args.full else 'quick profile'}): "
        f"{args.trials} trials x {args.meta_loops} meta-loops per cell"
    )
    sweep(args)
    run = settings.from_args(args)
    archs = [str(a) for a in dict.fromkeys(run.archs)]
    store = Store(args.store)
    try:
        written = export(store, Path(args.out), archs, run.comparable())
    finally:
        store.close()
    written += publish(Path(args.out), args.family, archs, set(run.modes) == set(MODES), args.data_dir)
    for path in written:
        console.print(f"wrote {path}")


def configure(parser) -> None:
    add_arguments(parser, trials=3, meta_loops=10, store="reproduce.sqlite in the --out folder")
    parser.add_argument(
        "--full",
        action="store_true",
        help="the paper's whole grid: 98 architectures x 6 modes x 10 trials x 100 meta-loops",
    )
    parser.add_argument("--out", default="results", help="where exports and figures go (default: results/)")
    parser.set_defaults(func=reproduce)
