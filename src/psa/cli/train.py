"""`psa train` (one trial of the Frustration Engine, resumable from its checkpoint) and `psa clean`
(psa's checkpoints deleted, never another file)."""

from pathlib import Path

from psa.cli import options
from psa.trial.modes import MODES
from psa.trial.spec import SEED


def train(args) -> None:
    from psa.engine.train import train
    from psa.trial.architecture import Architecture
    from psa.trial.spec import TrialSpec

    spec = TrialSpec(Architecture.parse(args.arch), args.family, args.mode, 0, args.seed, options.hyper(args))
    train(spec, args.meta_loops, args.model_dir, args.device, args.threads, args.data_dir, args.tensorboard, args.debug)


def configure_train(parser) -> None:
    parser.add_argument("--arch", required=True, help='architecture, e.g. "[4*4, 2*8]" or "1*2048"')
    parser.add_argument("--mode", default="none", help=f"ablation mode: one of {', '.join(MODES)} (default: none)")
    options.alias(parser, "--ablation-mode", dest="mode")
    options.add_family(parser)
    parser.add_argument("--meta-loops", type=options.whole(1), default=100, help="meta-loops to run (default: 100)")
    options.add_hyper(parser)
    parser.add_argument("--model-dir", type=Path, default=Path("models"), help="checkpoint folder (default: models/)")
    parser.add_argument("--seed", type=options.seed, default=SEED, help=f"trial seed (default: {SEED})")
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


def clean(args) -> None:
    from psa.engine.checkpoint import clean

    clean(args.model_dir, args.family, args.files, args.all)


def configure_clean(parser) -> None:
    parser.add_argument("files", nargs="*", help="checkpoint files to delete (inside --model-dir)")
    parser.add_argument("--all", action="store_true", help="delete every psa checkpoint in --model-dir")
    parser.add_argument("--model-dir", default="models", help="where checkpoints live (default: models/)")
    options.add_family(parser)
    parser.set_defaults(func=clean)
