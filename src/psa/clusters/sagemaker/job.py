"""`psa cloud job`: what a SageMaker training job runs (the entry script of the source archive
calls `main` with the job's hyperparameters; nothing on this path needs an AWS library). A job
trains its share of the grid with the sweep engine: one architecture x mode in the study's plan,
whole architectures in all modes for a shard (psa.clusters.sagemaker.sharded).

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

import json
import os
from pathlib import Path

from psa.clusters.sagemaker.layout import STORE
from psa.files import write_json, write_text
from psa.sweeps.settings import Machine, RunSettings
from psa.trial.spec import KEY, Grid, log_line


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
    machine: Machine = Machine(),
    work_dir: Path | None = None,
    command: str = "psa cloud job",
) -> list[dict]:
    """Train the grid through the one run path into a live store in `work_dir` (default: a new
    temporary folder), its copy kept in `checkpoint_dir` and resumed from there; write the model
    folder `out_dir`; the trials' rows."""
    # torch comes in here, not whenever a `psa cloud` tool starts.
    from psa.store import Store
    from psa.sweeps.sweep import run_grid, scratch_store

    grid, meta_loops = run_settings.grid(), run_settings.meta_loops
    snapshot, live = checkpoint_dir / STORE, scratch_store(STORE, work_dir)
    print(
        f"PSA job | {', '.join(map(str, grid.archs))} x {', '.join(run_settings.modes)} | {len(grid.specs)} trials "
        f"x {meta_loops} meta-loops | device {machine.device or 'auto'}",
        flush=True,
    )
    run_grid(run_settings, live, machine, snapshot=snapshot, command=command, log=LoopLines(grid, meta_loops))
    store = Store.read(live)
    try:
        return write_outputs(store, grid, meta_loops, out_dir)
    finally:
        store.close()


def write_outputs(store, grid: Grid, meta_loops: int, out_dir: Path) -> list[dict]:
    from psa.store.schema import key
    from psa.study.export import export
    from psa.study.study import open_study

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {tuple(r[column] for column in KEY): r for r in store.completed()}
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
    export(open_study(store.path), out_dir / "results", [str(arch) for arch in grid.archs])
    return [r for _, r in mine]
