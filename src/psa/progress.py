"""Progress of long work, told once to a Reporter by whatever trains. On a terminal it draws rich
bars (trials, meta-loops of the current group, batches); elsewhere (nohup, CI, CloudWatch) it
prints a plain line when a meta-loop ends or a batch is done, at most one every `every` seconds:
trials done, what trains, the loop, elapsed time and an ETA."""

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

# Without a terminal (nohup, a pipe, CI, CloudWatch) rich would wrap at 80 columns and cut table
# cells; a log line is instead as long as its text.
LOG_WIDTH = 1000


def make_console(stderr: bool = False) -> Console:
    """The console every command prints through: rich on a terminal, unwrapped lines elsewhere."""
    terminal = Console(stderr=stderr, highlight=False)
    if terminal.is_terminal:
        return terminal
    return Console(stderr=stderr, highlight=False, width=LOG_WIDTH, soft_wrap=True)


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Reporter:
    def __init__(
        self, console: Console | None = None, trials: int = 0, every: float = 30.0, live: bool | None = None, check=None
    ):
        """`check()`, if given, runs at every step and meta-loop: where a sweep learns that a signal
        asked it to stop (psa.sweeps.stopping)."""
        self.check = check or (lambda: None)
        self.console = console or make_console()
        self.total, self.every = trials, every
        self.live = self.console.is_terminal if live is None else live
        self.trials_done = 0
        self.name, self.trials, self.loops, self.steps = "", 0, 1, 1
        self.loop, self.step_count = 0, 0
        self.started = self.last = time.monotonic()
        self.bars = None

    def __enter__(self) -> "Reporter":
        if self.live:
            self.bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bars.start()
            self.trial_bar = self.bars.add_task("trials", total=self.total)
            self.loop_bar = self.bars.add_task("meta-loops", total=1)
            self.step_bar = self.bars.add_task("batches", total=1)
        return self

    def __exit__(self, *exc) -> None:
        if self.bars is not None:
            self.bars.stop()
            self.bars = None

    def print(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)  # above the bars while they show

    def group(self, name: str, trials: int, loops: int, steps: int, first_loop: int = 0) -> None:
        """A group of `trials` trials (`name`: its architectures) starts, `loops` meta-loops of
        `steps` training steps each, of which `first_loop` are already done."""
        self.name, self.trials, self.loops, self.steps = name, trials, loops, steps
        self.loop, self.step_count = first_loop, 0
        if self.bars:
            self.bars.update(self.trial_bar, description=f"trials ({name}: {trials} at once)")
            self.bars.update(self.loop_bar, total=loops, completed=first_loop)
            self.bars.update(self.step_bar, total=steps, completed=0)

    def step(self) -> None:
        self.check()
        self.step_count += 1
        if self.bars:
            self.bars.advance(self.step_bar)
        else:
            self._plain(f"batch {self.step_count}/{self.steps} of loop {self.loop + 1}/{self.loops}")

    def loop_done(self, loop: int) -> None:
        self.check()
        self.loop, self.step_count = loop, 0
        if self.bars:
            self.bars.update(self.loop_bar, completed=loop)
            self.bars.reset(self.step_bar, total=self.steps)
        else:
            self._plain(f"loop {loop}/{self.loops}")

    def sync(self, grid_done: int) -> None:
        """Trials of the grid completed since the start by every sweep on the store: with others
        sharing the work, the count and the ETA are the grid's, not this sweep's alone."""
        self.trials_done = max(self.trials_done, grid_done)
        if self.bars:
            self.bars.update(self.trial_bar, completed=self.trials_done)

    def group_done(self) -> None:
        self.trials_done += self.trials
        self.trials = 0
        if self.bars:
            self.bars.update(self.trial_bar, completed=self.trials_done)

    def _plain(self, where: str) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.started
        done = self.trials_done + self.trials * (self.loop + self.step_count / self.steps) / self.loops
        eta = f"ETA {duration(elapsed * (self.total - done) / done)}" if 0 < done < self.total else "ETA -"
        self.console.print(
            f"[{time.strftime('%H:%M:%S')}] trials {self.trials_done}/{self.total} done | "
            f"{self.name}: {where} | elapsed {duration(elapsed)} | {eta}",
            highlight=False,
            soft_wrap=True,
        )
