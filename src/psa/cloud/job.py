"""`psa cloud job`: what a SageMaker training job runs (the entry script of the source archive
calls `main` with the job's hyperparameters; nothing on this path needs an AWS library). A job
trains its share of the grid with the sweep engine: one architecture x mode in the study's plan,
whole architectures in all modes for a shard (psa.cloud.sharded).

Its results store lives in a scratch folder and is copied, after every committed meta-loop, as
one plain file into the checkpoint folder (--checkpoint-dir, SageMaker's /opt/ml/checkpoints),
which SageMaker syncs with the job's checkpoint S3 URI file by file. A spot job that is
interrupted restarts with that folder restored and goes on from the last commit. MNIST comes from
the job's `training` input channel ($SM_CHANNEL_TRAINING).

At the end the model folder ($SM_MODEL_DIR, else /opt/ml/model), which SageMaker packs into
`<job>/output/model.tar.gz`, receives the final store (psa.sqlite), its exports (results/), and
the study's files: results.txt (a bounty per line, 2 decimals), comprehensive_results.json (an
object per trial: bounty, best_validation_accuracy, best_validation_epoch, final_test_accuracy,
seed, ...) and history.json (every meta-loop of every trial).

The log (stdout, which SageMaker sends to CloudWatch) is what `sagemaker-logs-parser` reads. Every
line about a trial starts with `Trial <k>/<N> | ` (in a shard `Cell <L*W>/<mode> | Trial ...`),
because the batched engine reports the trials' loops interleaved; the rest of a loop line is the
study's (docs/DESIGN.md section 6):

    PSA job | 1*4 x none | 2 trials x 2 meta-loops | device cpu
    Trial 1/2 | Loop 1/2 (Global: 1) | Current: 80.12% | LKG: 80.12% | Bounty: 80.12%
    Trial 2/2 | Loop 1/2 (Global: 1) | Current: 79.50% | LKG: 79.50% | Bounty: 79.50%
    ...
    Trial 1/2 | Result | Bounty: 85.10% (loop 2) | Final Test: 84.97% | seed 1234567
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

from psa import options, settings
from psa.cloud.layout import CHECKPOINTS, STORE
from psa.files import write_json, write_text
from psa.settings import RunSettings
from psa.trial import Grid, log_line


def model_dir() -> Path:
    return Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))


class LoopLines:
    """The per-trial loop lines of the job's log (on_loop's observer)."""

    def __init__(self, grid: Grid, meta_loops: int):
        self.meta_loops = meta_loops
        self.tagged = len({(s.arch, s.mode) for s in grid.specs}) > 1
        self.per_cell = max(s.trial for s in grid.specs) + 1

    def tag(self, spec) -> str:
        cell = f"Cell {spec.arch}/{spec.mode} | " if self.tagged else ""
        return f"{cell}Trial {spec.trial + 1}/{self.per_cell} | "

    def __call__(self, stacks, loop: int, records) -> None:
        for stack, stack_records in zip(stacks, records):
            for spec, record in zip(stack.specs, stack_records):
                print(self.tag(spec) + log_line(record, loop, self.meta_loops), flush=True)


def run(
    run_settings: RunSettings,
    out_dir: Path,
    checkpoint_dir: Path,
    data_dir=None,
    device=None,
    work_dir: Path | None = None,
    checkpoint_every: float | None = None,
) -> list[dict]:
    """Train the grid into a store resumed from `checkpoint_dir` if it holds one; write the model
    folder; the trials' rows."""
    # torch comes in here, not whenever a `psa cloud` tool starts.
    from psa.device import memory_budget, pick_device
    from psa.store.claims import restore
    from psa.sweep import CHECKPOINT_EVERY, run_sweep

    device = pick_device(device)
    snapshot = checkpoint_dir / STORE
    live = (work_dir or Path(tempfile.mkdtemp(prefix="psa-job-"))) / STORE
    store, resumed = restore(snapshot, live)
    try:
        grid, meta_loops = run_settings.grid(), run_settings.meta_loops
        archs = ", ".join(str(arch) for arch in grid.archs)
        modes = ", ".join(run_settings.modes)
        print(
            f"PSA job | {archs} x {modes} | {len(grid.specs)} trials x {meta_loops} meta-loops | device {device}"
            + (f" | resuming from {snapshot}" if resumed else ""),
            flush=True,
        )
        run_sweep(
            store,
            run_settings,
            device,
            memory_budget(device, None),
            command="psa cloud job",
            data_dir=data_dir,
            checkpoint_every=CHECKPOINT_EVERY if checkpoint_every is None else checkpoint_every,
            snapshot=snapshot,
            log=LoopLines(grid, meta_loops),
        )
        return write_outputs(store, grid, meta_loops, out_dir)
    finally:
        store.close()


def write_outputs(store, grid: Grid, meta_loops: int, out_dir: Path) -> list[dict]:
    from psa.export import export
    from psa.store.schema import KEY_COLUMNS, key

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {tuple(r[column] for column in KEY_COLUMNS): r for r in store.completed()}
    mine = [(spec, rows[key(spec, meta_loops)]) for spec in grid.specs]
    log = LoopLines(grid, meta_loops)
    for spec, r in mine:
        print(
            f"{log.tag(spec)}Result | Bounty: {r['bounty']:.2f}% (loop {r['bounty_loop']}) | "
            f"Final Test: {r['test_accuracy']:.2f}% | seed {spec.seed}",
            flush=True,
        )
    write_text(out_dir / "results.txt", "".join(f"{r['bounty']:.2f}\n" for _, r in mine))
    write_json(
        out_dir / "comprehensive_results.json",
        [
            {
                "trial": spec.trial + 1,
                "arch": str(spec.arch),
                "mode": spec.mode,
                "seed": spec.seed,
                "seeding": grid.seeding,
                "meta_loops": meta_loops,
                "bounty": r["bounty"],
                "best_validation_accuracy": r["bounty"],
                "best_validation_epoch": r["bounty_loop"],
                "final_test_accuracy": r["test_accuracy"],
                "seconds": r["seconds"],
                "device": r["device"],
            }
            for spec, r in mine
        ],
    )
    history = [
        {
            "trial": spec.trial + 1,
            "arch": str(spec.arch),
            "mode": spec.mode,
            "seed": spec.seed,
            "loops": [vars(x) for x in store.history(r["id"])],
        }
        for spec, r in mine
    ]
    write_text(out_dir / "history.json", json.dumps(history) + "\n")
    store.snapshot(out_dir / STORE)
    export(store, out_dir / "results", [str(arch) for arch in grid.archs])
    return [r for _, r in mine]


def configure(parser: argparse.ArgumentParser) -> None:
    settings.add_arguments(parser, trials=10, meta_loops=100, archs_required=True)
    parser.add_argument("--model-dir", default=None, help="output folder (default: $SM_MODEL_DIR, else /opt/ml/model)")
    parser.add_argument(
        "--checkpoint-dir",
        default=CHECKPOINTS,
        help=f"where the store's copy is kept and resumed from (default: {CHECKPOINTS})",
    )
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="the live store's folder (default: a new temporary one)"
    )
    parser.add_argument(
        "--checkpoint-every",
        type=options.NON_NEGATIVE,
        default=None,
        help="seconds between commits of progress (default: as psa sweep)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("SM_CHANNEL_TRAINING"),
        help="folder with the MNIST IDX files (default: the `training` channel, $SM_CHANNEL_TRAINING)",
    )
    options.add_device(parser)
    parser.set_defaults(func=run_from_args)


def run_from_args(args) -> None:
    run(
        settings.from_args(args),
        Path(args.model_dir) if args.model_dir else model_dir(),
        Path(args.checkpoint_dir),
        args.data_dir,
        args.device,
        args.work_dir,
        args.checkpoint_every,
    )


def main(argv: list[str] | None = None) -> None:
    """The source archive's entry script calls this. A PSAError ends the job with its traceback
    in the log, which SageMaker reports as the job's failure."""
    parser = argparse.ArgumentParser(prog="psa cloud job", description="train one job's trials")
    configure(parser)
    args = parser.parse_args(argv)
    args.func(args)
