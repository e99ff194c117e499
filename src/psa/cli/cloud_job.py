"""`psa cloud job`: what a SageMaker training job runs (psa.clusters.sagemaker.job). The source
archive's entry script calls `main` with the job's hyperparameters, which parses them as `psa cloud
job` does and needs no AWS library; a PSAError ends the job with status 2 and its line in the log,
which SageMaker reports as the job's failure."""

import os
import sys
from pathlib import Path

from psa.cli import Parser, execute, options
from psa.clusters.sagemaker.layout import CHECKPOINTS


def job(args) -> None:
    from psa.clusters.sagemaker.job import model_dir, run

    run(
        options.run_settings(args),
        Path(args.model_dir) if args.model_dir else model_dir(),
        Path(args.checkpoint_dir),
        options.machine(args),
        args.work_dir,
        args.command_line,
    )


def configure(parser) -> None:
    options.add_run(parser, trials=10, meta_loops=100, archs_required=True)
    options.add_machine(parser, checkpoint_help="seconds between commits of progress (default: as psa sweep)")
    # MNIST comes as the job's `training` input channel.
    channel = os.environ.get("SM_CHANNEL_TRAINING")
    parser.set_defaults(data_dir=Path(channel) if channel else None)
    parser.add_argument("--model-dir", default=None, help="output folder (default: $SM_MODEL_DIR, else /opt/ml/model)")
    parser.add_argument(
        "--checkpoint-dir",
        default=CHECKPOINTS,
        help=f"where the store's copy is kept and resumed from (default: {CHECKPOINTS})",
    )
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="the live store's folder (default: a new temporary one)"
    )
    parser.set_defaults(func=job)


def main(argv: list[str] | None = None) -> None:
    parser = Parser(prog="psa cloud job", description="train one job's trials")
    configure(parser)
    execute(parser, sys.argv[1:] if argv is None else argv)
