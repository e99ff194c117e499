"""`psa train`: one trial of the Frustration Engine (psa.engine.reference) with an LKG checkpoint after every
meta-loop, so running the command again resumes where it stopped. Ctrl-C ends the current loop
without keeping it and still reports the LKG's test accuracy."""

import signal
import time
from pathlib import Path

from rich.table import Table

from psa import files
from psa.engine import checkpoint
from psa.engine.batched.grouping import check_fits
from psa.engine.curves import Curves
from psa.engine.memory import tune_for_training
from psa.engine.reference import accuracy, new_state, run_loops
from psa.errors import PSAError
from psa.progress import Reporter, make_console
from psa.trial.data import load_mnist
from psa.trial.device import device_memory, pick_device, set_threads
from psa.trial.modes import check_mode
from psa.trial.spec import TrialSpec, log_line
from psa.trial.topology import topology


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


def train(
    spec: TrialSpec,
    meta_loops: int,
    model_dir: Path | str = "models",
    device: str | None = None,
    threads: int | None = None,
    data_dir: Path | str | None = None,
    tensorboard: Path | None = None,
    debug: bool = False,
) -> None:
    """`psa train`: `meta_loops` more meta-loops of the trial `spec` (its trial index is 0), going on
    from the LKG checkpoint in `model_dir` if there is one (whose seed is then kept)."""
    console = make_console()
    tune_for_training()
    check_mode(spec.mode)
    device = pick_device(device)
    set_threads(threads)
    check_fits([spec], device_memory(device), f"the {device} has")
    path = checkpoint.default_path(files.output_folder(model_dir, "--model-dir"), spec.family)
    curves = Curves(tensorboard) if tensorboard else None
    data = load_mnist(data_dir).to(device)
    asked = spec.seed
    state, spec = _resume(path, spec, device, console)
    if spec.seed != asked:
        console.print(f"[yellow]note:[/] the checkpoint's seed {spec.seed} is kept (--seed {asked} ignored on resume)")
    console.print(_summary_table(spec, device, meta_loops, path))

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
        reporter.print(log_line(record, record.loop - first, meta_loops))
        if curves:
            curves.write({spec: [record]})
        if debug:
            reporter.print(f"  ablated: {record.ablated or '-'} | improved: {record.improved}")

    previous = signal.signal(signal.SIGINT, on_sigint)
    started = time.perf_counter()
    try:
        with reporter:
            # The reporter counts this run's loops; the records carry the global loop numbers.
            reporter.group(str(spec.arch), 1, first + meta_loops, -(-len(data.x_train) // spec.hyper.batch_size), first)
            run_loops(spec, data, state, meta_loops, on_loop, reporter, stop=lambda: bool(interrupted))
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
