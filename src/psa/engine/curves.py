"""Live training curves for TensorBoard (`--tensorboard DIR` of psa train and psa sweep): every
trial's Current, LKG and Bounty accuracies and its mean training loss, one step per meta-loop (the
global loop), as the run `DIR/<family>/<arch>/<mode>/trial-<k>-seed-<seed>` (k counts from 1, as
every output of psa does; the store keeps the index from 0). The seed keeps two
`psa train` runs apart, whose trial is always 0; runs of one trial (resumes) continue its curves.

The tensorboard package is optional (`pip install tensorboard`, or the checkout's extra:
`pip install -e ".[tensorboard]"`), imported only when asked for."""

from pathlib import Path

from psa.errors import PSAError
from psa.trial.spec import LoopRecord, TrialSpec

TAGS = {  # tag -> field of LoopRecord
    "accuracy/current": "score",
    "accuracy/lkg": "lkg_score",
    "accuracy/bounty": "bounty",
    "loss/train": "loss",
}


def run_dir(root: Path, spec: TrialSpec) -> Path:
    return root / spec.family / str(spec.arch) / spec.mode / f"trial-{spec.trial + 1}-seed-{spec.seed}"


class Curves:
    """One TensorBoard writer per trial in flight: write() adds loop records and flushes them to
    disk, so TensorBoard shows them at once; close() ends trials that are done."""

    def __init__(self, root: Path | str):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise PSAError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
        self.root, self.new_writer, self.writers = Path(root), SummaryWriter, {}

    def write(self, records: dict[TrialSpec, list[LoopRecord]]) -> None:
        for spec, loops in records.items():
            if not loops:
                continue
            if spec not in self.writers:
                self.writers[spec] = self.new_writer(str(run_dir(self.root, spec)))
            writer = self.writers[spec]
            for record in loops:
                for tag, name in TAGS.items():
                    value = getattr(record, name)
                    if value is not None:
                        writer.add_scalar(tag, value, record.loop)
            writer.flush()

    def close(self, specs=None) -> None:
        """Close the writers of `specs` (default: all)."""
        for spec in list(self.writers) if specs is None else specs:
            writer = self.writers.pop(spec, None)
            if writer is not None:
                writer.close()

    def __enter__(self) -> "Curves":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
