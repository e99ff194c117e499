"""`psa cloud job`: what a SageMaker training job runs (the entry script of the source archive
calls `main` with the job's hyperparameters; nothing on this path needs an AWS library). It trains
the job's trials together with the batched engine and leaves in the model folder ($SM_MODEL_DIR,
else /opt/ml/model), which SageMaker packs into `<job>/output/model.tar.gz`:

- results.txt: one bounty per line, 2 decimals, trial order;
- comprehensive_results.json: one object per trial (bounty, best_validation_accuracy,
  best_validation_epoch, final_test_accuracy, seed, ...);
- history.json: one object per trial with every meta-loop's record.

The log (stdout, which SageMaker sends to CloudWatch) is what `sagemaker-logs-parser` reads.
Every line about a trial starts with `Trial <k>/<N> | `, because the batched engine reports the
trials' loops interleaved; the rest of a loop line is the study's (docs/DESIGN.md section 5):

    PSA job | arch 1*4 | mode none | 2 trials x 2 meta-loops | device cpu
    Trial 1/2 | seed 1234567
    Trial 2/2 | seed 7654321
    Trial 1/2 | Loop 1/2 (Global: 1) | Current: 80.12% | LKG: 80.12% | Bounty: 80.12%
    Trial 2/2 | Loop 1/2 (Global: 1) | Current: 79.50% | LKG: 79.50% | Bounty: 79.50%
    ...
    Trial 1/2 | Result | Bounty: 85.10% (loop 2) | Final Test: 84.97%
"""

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path

from psa import options
from psa.architecture import Architecture
from psa.modes import check_mode
from psa.trial import SEEDINGS, TrialResult, TrialSpec, grid, log_line


FAMILY = "simplemlp"  # the cloud jobs train SimpleMLP, as the published study did


def model_dir() -> Path:
    return Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))


def run(specs: list[TrialSpec], meta_loops: int, out_dir: Path, data_dir=None, device=None) -> list[TrialResult]:
    # torch comes in here, not whenever a `psa cloud` tool starts.
    from psa.batched import train_trials
    from psa.data import load_mnist
    from psa.device import pick_device

    device = str(pick_device(device))
    total = len(specs)
    first = specs[0]
    print(f"PSA job | arch {first.arch} | mode {first.mode} | {total} trials x {meta_loops} meta-loops | "
          f"device {device}", flush=True)
    for spec in specs:
        print(f"Trial {spec.trial + 1}/{total} | seed {spec.seed}", flush=True)

    def on_loop(stacks, loop, records) -> None:
        for stack, stack_records in zip(stacks, records):
            for spec, record in zip(stack.specs, stack_records):
                print(f"Trial {spec.trial + 1}/{total} | {log_line(record, loop, meta_loops)}", flush=True)

    results = train_trials(specs, load_mnist(data_dir), meta_loops, device, on_loop=on_loop)
    for r in results:
        print(f"Trial {r.spec.trial + 1}/{total} | Result | Bounty: {r.bounty:.2f}% (loop {r.bounty_loop}) | "
              f"Final Test: {r.test_accuracy:.2f}%", flush=True)
    write_outputs(results, meta_loops, out_dir)
    return results


def write_outputs(results: list[TrialResult], meta_loops: int, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.txt").write_text("".join(f"{r.bounty:.2f}\n" for r in results))
    summary = [{
        "trial": r.spec.trial + 1, "arch": str(r.spec.arch), "mode": r.spec.mode, "seed": r.spec.seed,
        "meta_loops": meta_loops, "bounty": r.bounty, "best_validation_accuracy": r.bounty,
        "best_validation_epoch": r.bounty_loop, "final_test_accuracy": r.test_accuracy,
        "seconds": r.seconds, "device": r.device,
    } for r in results]
    (out_dir / "comprehensive_results.json").write_text(json.dumps(summary, indent=2) + "\n")
    history = [{"trial": r.spec.trial + 1, "seed": r.spec.seed, "loops": [asdict(x) for x in r.history]}
               for r in results]
    (out_dir / "history.json").write_text(json.dumps(history) + "\n")


def add_hyperparameters(parser: argparse.ArgumentParser) -> None:
    """What a job runs with: the launcher passes these on, the job takes them."""
    parser.add_argument("--trials", type=options.whole(1), default=10, help="trials per job (default: 10)")
    parser.add_argument("--meta-loops", type=options.whole(1), default=100, help="meta-loops per trial (default: 100)")
    parser.add_argument("--seed", type=options.whole(0), default=0, help="base seed of the trial seeds (default: 0)")
    parser.add_argument("--seeding", choices=SEEDINGS, default=SEEDINGS[0],
                        help="independent (as in the study) or paired seeds (docs/DESIGN.md section 5)")
    options.add_hyper(parser)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", required=True, help='architecture, e.g. "1*2048"')
    parser.add_argument("--mode", required=True, help="ablation mode")
    add_hyperparameters(parser)
    parser.add_argument("--model-dir", default=None, help="output folder (default: $SM_MODEL_DIR, else /opt/ml/model)")
    options.add_data_dir(parser)
    options.add_device(parser)
    parser.set_defaults(func=run_from_args)


def run_from_args(args) -> None:
    arch = Architecture.parse(args.arch)
    specs = grid([arch], [check_mode(args.mode)], args.trials, FAMILY, args.seed, options.hyper(args), args.seeding).specs
    run(specs, args.meta_loops, Path(args.model_dir) if args.model_dir else model_dir(), args.data_dir, args.device)


def main(argv: list[str] | None = None) -> None:
    """The source archive's entry script calls this. A PSAError ends the job with its traceback
    in the log, which SageMaker reports as the job's failure."""
    parser = argparse.ArgumentParser(prog="psa cloud job", description="train one job's trials")
    configure(parser)
    args = parser.parse_args(argv)
    args.func(args)
