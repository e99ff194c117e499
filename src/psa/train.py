"""`psa train`: one trial of the Frustration Engine (psa.engine) with an LKG checkpoint after every
meta-loop, so running the command again resumes where it stopped. Ctrl-C ends the current loop
without keeping it and still reports the LKG's test accuracy."""

import signal
import time

from rich.table import Table

from psa import PSAError, checkpoint, files, options
from psa.architecture import Architecture
from psa.batched.grouping import check_fits
from psa.data import load_mnist
from psa.device import device_memory, pick_device, set_threads
from psa.engine import accuracy, new_state, run_loops
from psa.modes import MODES, check_mode
from psa.progress import Reporter, make_console
from psa.settings import SEED
from psa.tensorboard_log import Curves
from psa.topology import topology
from psa.trial import TrialSpec, log_line


def _resume(path, spec: TrialSpec, device, console):
    """The state saved at `path` for this architecture, or a fresh one if there is none."""
    if not path.exists():
        return new_state(spec, device), spec
    tensors, meta = checkpoint.load(path)
    if meta["arch"] != str(spec.arch) or meta["family"] != spec.family:
        raise PSAError(
            f"checkpoint {path} holds a {meta['family']} {meta['arch']} model, but this run "
            f"asks for {spec.family} {spec.arch}: use another --model-dir, or `psa clean` to start over"
        )
    spec = TrialSpec(spec.arch, spec.family, spec.mode, spec.trial, meta["seed"], spec.hyper)
    state = new_state(spec, device)
    try:
        state.lkg.load_state_dict(tensors)
    except RuntimeError as error:
        raise PSAError(
            f"checkpoint {path} is damaged (weights do not fit {spec.arch}: {error}); "
            f"delete it (psa clean {path}) to start over"
        ) from None
    state.lkg_score, state.bounty = meta["lkg_score"], meta["bounty"]
    state.bounty_loop, state.loops_done = meta["bounty_loop"], meta["global_loop"]
    switched = f" (switching mode {meta['mode']} -> {spec.mode})" if meta["mode"] != spec.mode else ""
    console.print(
        f"Resuming from {path} at global loop {state.loops_done + 1}{switched}, "
        f"LKG {state.lkg_score:.2f}%, seed {spec.seed}"
    )
    return state, spec


def _summary_table(spec: TrialSpec, device, meta_loops: int, path) -> Table:
    table = Table(title=f"PSA {spec.family} {spec.arch}", show_header=False)
    top = topology(spec.arch, spec.family)
    shapes = top.shapes
    rows = [
        (
            "Linear layers",
            " -> ".join(str(i) for i, _ in shapes) + f" -> {shapes[-1][1]}"
            if len(shapes) <= 12
            else f"{len(shapes)} layers, widths {spec.arch}",
        ),
        ("Parameters", f"{top.parameters:,}"),
        ("Ablation mode", spec.mode),
        ("Meta-loops", str(meta_loops)),
        (
            "Optimizer",
            f"AdamW lr={spec.hyper.lr:g}, fresh each loop"
            + (f", weight decay {spec.hyper.weight_decay:g}" if spec.mode == "decay" else ""),
        ),
        ("Batch size", str(spec.hyper.batch_size)),
        ("Dropout", f"{spec.hyper.dropout:g}" if spec.mode == "dropout" else "off"),
        ("Device", str(device)),
        ("Seed", str(spec.seed)),
        ("Checkpoint", str(path)),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def train(args) -> None:
    console = make_console()
    arch, mode = Architecture.parse(args.arch), check_mode(args.mode)
    device = pick_device(args.device)
    set_threads(args.threads)
    spec = TrialSpec(arch, args.family, mode, 0, args.seed, options.hyper(args))
    check_fits([spec], device_memory(device), f"the {device} has")
    path = checkpoint.default_path(files.output_folder(args.model_dir, "--model-dir"), args.family)
    curves = Curves(args.tensorboard) if args.tensorboard else None
    data = load_mnist(args.data_dir).to(device)
    state, spec = _resume(path, spec, device, console)
    if spec.seed != args.seed:
        console.print(
            f"[yellow]note:[/] the checkpoint's seed {spec.seed} is kept (--seed {args.seed} ignored on resume)"
        )
    console.print(_summary_table(spec, device, args.meta_loops, path))

    interrupted = []

    def on_sigint(signum, frame):
        if interrupted:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        interrupted.append(True)
        console.print("[yellow]Ctrl-C: ending this meta-loop, keeping the LKG checkpoint[/]")

    first = state.loops_done
    reporter = Reporter(console, trials=1)

    def on_loop(record, state):
        checkpoint.save(
            path,
            state.lkg.state_dict(),
            {
                "family": spec.family,
                "arch": str(spec.arch),
                "mode": spec.mode,
                "seed": spec.seed,
                "global_loop": state.loops_done,
                "lkg_score": state.lkg_score,
                "bounty": state.bounty,
                "bounty_loop": state.bounty_loop,
                "hyper": vars(spec.hyper),
                "rng": {"scheme": "keyed by (seed, purpose, global loop)", "next_loop": state.loops_done + 1},
            },
        )
        reporter.print(log_line(record, record.loop - first, args.meta_loops))
        if curves:
            curves.write({spec: [record]})
        if args.debug:
            reporter.print(f"  ablated: {record.ablated or '-'} | improved: {record.improved}")

    previous = signal.signal(signal.SIGINT, on_sigint)
    started = time.perf_counter()
    try:
        with reporter:
            # The reporter counts this run's loops; the records carry the global loop numbers.
            reporter.group(
                str(spec.arch), 1, first + args.meta_loops, -(-len(data.x_train) // spec.hyper.batch_size), first
            )
            run_loops(spec, data, state, args.meta_loops, on_loop, reporter, stop=lambda: bool(interrupted))
    finally:
        signal.signal(signal.SIGINT, previous)
        if curves:
            curves.close()
    if state.loops_done == first:
        console.print("No meta-loop completed; nothing to report.")
        if interrupted:
            raise SystemExit(130)
        return
    test = accuracy(state.lkg, data.x_test, data.y_test)
    console.print(
        f"Final | Bounty: {state.bounty:.2f}% at loop {state.bounty_loop} (Global) | "
        f"LKG test accuracy: {test:.2f}% | {time.perf_counter() - started:.1f} s"
    )
    if interrupted:
        raise SystemExit(130)


def configure(parser) -> None:
    parser.add_argument("--arch", required=True, help='architecture, e.g. "[4*4, 2*8]" or "1*2048"')
    parser.add_argument("--mode", default="none", help=f"ablation mode: one of {', '.join(MODES)} (default: none)")
    options.alias(parser, "--ablation-mode", dest="mode")
    options.add_family(parser)
    parser.add_argument("--meta-loops", type=options.whole(1), default=100, help="meta-loops to run (default: 100)")
    options.add_hyper(parser)
    parser.add_argument("--model-dir", default="models", help="checkpoint folder (default: models/)")
    parser.add_argument("--seed", type=options.whole(0), default=SEED, help=f"trial seed (default: {SEED})")
    options.add_device(parser)
    options.add_threads(parser)
    options.add_data_dir(parser)
    options.add_tensorboard(parser)
    parser.add_argument(
        "--num-workers",
        type=options.whole(0),
        default=0,
        help="accepted for compatibility; batches are sliced from in-memory tensors, so no loader workers are used",
    )
    parser.add_argument("--debug", action="store_true", help="print what each loop ablated")
    parser.set_defaults(func=train)
