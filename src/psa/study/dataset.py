"""MNIST class distribution and majority-class (ZeroR) baselines per split, computed from the same
loader and 50k/10k split that training uses, so the baselines match what the trainer sees."""

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.table import Table

from psa.trial.data import load_mnist

SPLITS = {  # MNIST attribute -> display name
    "y_full_train": "Full Training (60k)",
    "y_test": "Full Test (10k)",
    "y_train": "Split Training (50k)",
    "y_val": "Split Validation (10k)",
}


@dataclass
class SplitAnalysis:
    name: str
    counts: list[int]  # per digit 0-9

    @property
    def size(self) -> int:
        return sum(self.counts)

    @property
    def zeror_class(self) -> int:
        return int(np.argmax(self.counts))

    @property
    def zeror(self) -> float:
        """Accuracy (percent) of always answering the most frequent class."""
        return 100.0 * max(self.counts) / self.size

    def percent(self, digit: int) -> float:
        return 100.0 * self.counts[digit] / self.size


@dataclass
class MNISTAnalysis:
    full_train: SplitAnalysis
    test: SplitAnalysis
    train: SplitAnalysis
    validation: SplitAnalysis

    @property
    def splits(self) -> list[SplitAnalysis]:
        return [self.full_train, self.test, self.train, self.validation]


def analyze_mnist(data_dir: Path | str | None = None) -> MNISTAnalysis:
    mnist = load_mnist(data_dir)
    splits = [
        SplitAnalysis(name, np.bincount(getattr(mnist, attr).numpy(), minlength=10).tolist())
        for attr, name in SPLITS.items()
    ]
    return MNISTAnalysis(*splits)


@functools.cache  # several tools may ask within one process; MNIST loads once
def validation_zeror(data_dir: Path | str | None = None) -> float:
    """The failure threshold of the regime rules: ZeroR accuracy on the validation split."""
    return analyze_mnist(data_dir).validation.zeror


def split_table(split: SplitAnalysis) -> Table:
    table = Table(title=f"{split.name}: {split.size:,} images")
    table.add_column("Digit", justify="right")
    table.add_column("Count", justify="right")
    table.add_column("Percent", justify="right")
    for digit in range(10):
        style = "bold green" if digit == split.zeror_class else None
        table.add_row(str(digit), f"{split.counts[digit]:,}", f"{split.percent(digit):.2f}%", style=style)
    table.caption = f"ZeroR: class {split.zeror_class}, {split.zeror:.2f}%"
    return table


def summary_table(analysis: MNISTAnalysis) -> Table:
    table = Table(title="Summary: class share per split (%)")
    table.add_column("Digit", justify="right")
    for split in analysis.splits:
        table.add_column(split.name, justify="right")
    for digit in range(10):
        table.add_row(str(digit), *(f"{split.percent(digit):.2f}" for split in analysis.splits))
    table.add_section()
    table.add_row("Images", *(f"{split.size:,}" for split in analysis.splits))
    table.add_row("ZeroR class", *(str(split.zeror_class) for split in analysis.splits))
    table.add_row("ZeroR accuracy", *(f"{split.zeror:.2f}%" for split in analysis.splits), style="bold")
    return table
