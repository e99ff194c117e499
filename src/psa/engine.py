"""The Frustration Engine: one PSA trial exactly as DESIGN.md section 4 defines it, written the
plain way (one nn.Module, torch.optim.AdamW). It is the reference that the batched engine is
tested against, and what `psa train` runs."""

import copy
import random
import signal
import time
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from psa import PSAError, ablation, checkpoint, randomness
from psa.architecture import Architecture, linear_shapes
from psa.data import MNIST
from psa.models import build_model
from psa.modes import MODES, check_mode
from psa.trial import Hyper, LoopRecord, TrialSpec, log_line

EVAL_BATCH = 4096


@dataclass
class TrialState:
    """What survives between meta-loops (and across a resume): the LKG and its scores."""

    lkg: torch.nn.Module
    lkg_score: float = -1.0
    bounty: float = -1.0
    bounty_loop: int = 0
    loops_done: int = 0


def new_state(spec: TrialSpec, device="cpu", dtype=torch.float32) -> TrialState:
    dropout = spec.hyper.dropout if spec.mode == "dropout" else 0.0
    return TrialState(build_model(spec.arch, spec.family, spec.seed, dropout, dtype).to(device))


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = sum(
        int((model(x[i : i + EVAL_BATCH]).argmax(1) == y[i : i + EVAL_BATCH]).sum())
        for i in range(0, len(x), EVAL_BATCH)
    )
    return 100.0 * correct / len(x)


def train_epoch(model, optimizer, spec: TrialSpec, data: MNIST, loop: int, on_batch, stop) -> bool:
    """One epoch: a new shuffle, batches of batch_size with the last partial batch kept, mean
    cross-entropy. False if `stop()` asked to end it early."""
    model.train()
    n, size = len(data.x_train), spec.hyper.batch_size
    order = randomness.shuffle(spec.seed, loop, n).to(data.x_train.device)
    for step, start in enumerate(range(0, n, size)):
        if stop():
            return False
        batch = order[start : start + size]
        model.set_dropout_key(randomness.dropout_key(spec.seed, loop, step))
        loss = F.cross_entropy(model(data.x_train[batch]), data.y_train[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        on_batch(step)
    return True


def run_loops(spec: TrialSpec, data: MNIST, state: TrialState, meta_loops: int,
              on_loop=lambda record, state: None, on_batch=lambda step: None, stop=lambda: False):
    """Run up to `meta_loops` meta-loops on `state`, in place. Returns the loop records; a loop
    cut short by `stop()` is discarded, leaving the LKG as it was."""
    shapes = linear_shapes(spec.arch, spec.family)
    weight_decay = spec.hyper.weight_decay if spec.mode == "decay" else 0.0
    torch.set_flush_denormal(True)  # as the batched engine does (see batched.train_stacks)
    records = []
    for _ in range(meta_loops):
        loop = state.loops_done + 1
        active = copy.deepcopy(state.lkg)  # ablations never accumulate: each loop damages a fresh copy
        choice = ablation.choose(spec.mode, shapes, spec.family, spec.seed, loop) if loop > 1 else None
        ablation.apply(active.linears, spec.mode, choice)
        optimizer = torch.optim.AdamW(active.parameters(), lr=spec.hyper.lr, betas=(0.9, 0.999),
                                      eps=1e-8, weight_decay=weight_decay)
        if not train_epoch(active, optimizer, spec, data, loop, on_batch, stop):
            break
        score = accuracy(active, data.x_val, data.y_val)
        improved = score > state.lkg_score
        if improved:
            state.lkg, state.lkg_score = active, score
            if score > state.bounty:
                state.bounty, state.bounty_loop = score, loop
        state.loops_done = loop
        record = LoopRecord(loop, score, state.lkg_score, state.bounty, improved, ablation.describe(choice))
        records.append(record)
        on_loop(record, state)
    return records


# ----------------------------------------------------------------------------- psa train

def pick_device(requested: str | None) -> torch.device:
    if requested is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise PSAError("--device cuda asked for, but PyTorch sees no CUDA GPU")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise PSAError("--device mps asked for, but PyTorch sees no Apple MPS device")
    return torch.device(requested)


def _resume(path, spec: TrialSpec, device, console):
    """The state saved at `path` for this architecture, or a fresh one if there is none."""
    if not path.exists():
        return new_state(spec, device), spec
    tensors, meta = checkpoint.load(path)
    if meta.get("arch") != str(spec.arch) or meta.get("family") != spec.family:
        raise PSAError(
            f"checkpoint {path} holds a {meta.get('family')} {meta.get('arch')} model, but this run "
            f"asks for {spec.family} {spec.arch}: use another --model-dir, or `psa clean` to start over"
        )
    spec = TrialSpec(spec.arch, spec.family, spec.mode, spec.trial, int(meta["seed"]), spec.hyper)
    state = new_state(spec, device)
    try:
        state.lkg.load_state_dict(tensors)
    except RuntimeError as error:
        raise PSAError(f"checkpoint {path} is damaged (weights do not fit {spec.arch}: {error}); "
                       f"delete it (psa clean {path}) to start over") from None
    state.lkg_score, state.bounty = float(meta["lkg_score"]), float(meta["bounty"])
    state.bounty_loop, state.loops_done = int(meta["bounty_loop"]), int(meta["global_loop"])
    switched = f" (switching mode {meta['mode']} -> {spec.mode})" if meta["mode"] != spec.mode else ""
    console.print(f"Resuming from {path} at global loop {state.loops_done + 1}{switched}, "
                  f"LKG {state.lkg_score:.2f}%, seed {spec.seed}")
    return state, spec


def _summary_table(spec: TrialSpec, device, args, path):
    from rich.table import Table

    table = Table(title=f"PSA {spec.family} {spec.arch}", show_header=False)
    shapes = linear_shapes(spec.arch, spec.family)
    rows = [
        ("Linear layers", " -> ".join(str(i) for i, _ in shapes) + f" -> {shapes[-1][1]}"
         if len(shapes) <= 12 else f"{len(shapes)} layers, widths {spec.arch}"),
        ("Parameters", f"{spec.arch.parameter_count(spec.family):,}"),
        ("Ablation mode", spec.mode),
        ("Meta-loops", str(args.meta_loops)),
        ("Optimizer", f"AdamW lr={spec.hyper.lr:g}, fresh each loop"
         + (f", weight decay {spec.hyper.weight_decay:g}" if spec.mode == "decay" else "")),
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
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from psa.data import load_mnist

    console = Console(highlight=False)
    arch, mode = Architecture.parse(args.arch), check_mode(args.ablation_mode)
    device = pick_device(args.device)
    hyper = Hyper(args.lr, args.batch_size, args.weight_decay, args.dropout)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    spec = TrialSpec(arch, args.model, mode, 0, seed, hyper)
    path = checkpoint.default_path(args.model_dir, args.model)
    state, spec = _resume(path, spec, device, console)
    if args.seed is not None and spec.seed != args.seed:
        console.print(f"[yellow]note:[/] the checkpoint's seed {spec.seed} is kept (--seed {args.seed} ignored on resume)")
    data = load_mnist(args.data_dir).to(device)
    console.print(_summary_table(spec, device, args, path))

    interrupted = []

    def on_sigint(signum, frame):
        if interrupted:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        interrupted.append(True)
        console.print("[yellow]Ctrl-C: ending this meta-loop, keeping the LKG checkpoint[/]")

    previous = signal.signal(signal.SIGINT, on_sigint)
    steps = -(-len(data.x_train) // spec.hyper.batch_size)
    start_loop = state.loops_done
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=console, transient=True)

    def on_loop(record, state):
        checkpoint.save(path, state.lkg.state_dict(), {
            "family": spec.family, "arch": str(spec.arch), "mode": spec.mode, "seed": spec.seed,
            "global_loop": state.loops_done, "lkg_score": state.lkg_score, "bounty": state.bounty,
            "bounty_loop": state.bounty_loop, "hyper": vars(spec.hyper),
            "rng": {"scheme": "keyed by (seed, purpose, global loop)", "next_loop": state.loops_done + 1},
        })
        progress.console.print(log_line(record, record.loop - start_loop, args.meta_loops))
        if args.debug:
            progress.console.print(f"  ablated: {record.ablated or '-'} | improved: {record.improved}")
        progress.update(loops, advance=1)
        progress.reset(batches)

    started = time.perf_counter()
    try:
        with progress:
            loops = progress.add_task("meta-loops", total=args.meta_loops)
            batches = progress.add_task("batches", total=steps)
            run_loops(spec, data, state, args.meta_loops, on_loop,
                      on_batch=lambda step: progress.update(batches, completed=step + 1),
                      stop=lambda: bool(interrupted))
    finally:
        signal.signal(signal.SIGINT, previous)
    if state.loops_done == 0:
        console.print("No meta-loop completed; nothing to report.")
        return
    test = accuracy(state.lkg, data.x_test, data.y_test)
    console.print(f"Final | Bounty: {state.bounty:.2f}% at loop {state.bounty_loop} (Global) | "
                  f"LKG test accuracy: {test:.2f}% | {time.perf_counter() - started:.1f} s")
    if interrupted:
        raise SystemExit(130)


def configure(parser) -> None:
    parser.add_argument("--arch", required=True, help='architecture, e.g. "[4*4, 2*8]" or "1*2048"')
    parser.add_argument("--ablation-mode", default="none", metavar="MODE",
                        help=f"one of {', '.join(MODES)} (default: none)")
    parser.add_argument("--model", default="simplemlp", choices=("simplemlp", "resmlp"))
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--meta-loops", type=int, default=100)
    parser.add_argument("--model-dir", default="models", help="checkpoint folder (default: models/)")
    parser.add_argument("--seed", type=int, default=None, help="trial seed (default: random, recorded)")
    parser.add_argument("--device", choices=("cpu", "cuda", "mps"), default=None,
                        help="default: CUDA, else MPS, else CPU")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay, mode decay only")
    parser.add_argument("--dropout", type=float, default=0.1, help="dropout probability, mode dropout only")
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files")
    parser.add_argument("--num-workers", type=int, default=0,
                        help="accepted for compatibility; batches are sliced from in-memory tensors, "
                             "so no loader workers are used")
    parser.add_argument("--debug", action="store_true", help="print what each loop ablated")
    parser.set_defaults(func=train)
