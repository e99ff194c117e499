"""`sagemaker-logs-parser`: downloaded job logs turned into the convergence and LKG growth tables:
the study's (a row per job: the maximum over its trials, psa.study.series) and a row per trial beside.

Two kinds of log are read (docs/DESIGN.md section 6). psa's own jobs tag every trial line
`Trial <k>/<N> | ` (see psa.clusters.sagemaker.job) and end a trial with `Result | Bounty: ... | Final Test: ...`.
The original study's trainer ran its trials one after another, untagged, printed through a console
that wraps at 80 columns when no terminal is attached (a loop's `Bounty:` lands on the next,
indented line), and ends a run with `Final Test Accuracy: ...%` and `Final Bounty (validation
accuracy): ...%`; its downloader saves a stream one folder deeper (`<job>/<job>/algo-1-*.log`) with
every line as `[ISO time] message`. Wrapped lines are joined again before anything is matched.

An untagged log starts a new trial whenever the loop count starts again. A tagged trial whose loop
count starts again was rerun (a spot job restarted): its last run counts. A trial with fewer loops
than its lines announce was cut off; it is kept as far as it got, and reported. Only the latest job
of each architecture x mode is read; a shard's job, whose log interleaves many cells, is reported
and left to `psa cloud collect`."""

import re
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import track

from psa.clusters.sagemaker import layout
from psa.errors import PSAError
from psa.study.series import Curve

# A download's time stamp: psa's downloader writes `<ISO time> `, the original's `[<ISO time>] `.
STAMP = re.compile(r"^\[?\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)?\]? ?")
# A record of the original's console: its time column, blank when the second is the previous record's,
# then its level; what the console wraps is indented past both.
RECORD = re.compile(r"^(?:\[[\d:]+\])?\s*(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\s")
TAG = re.compile(r"\bTrial (\d+)/(\d+) \|")
LOOP = re.compile(r"Loop \d+/(\d+) \(Global: (\d+)\) \| Current: ([\d.]+)% \| LKG: ([\d.]+)%")
FINAL = re.compile(r"Final Test(?: Accuracy)?: ([\d.]+)%")
BOUNTY = re.compile(r"(?:Result \| Bounty|Final Bounty \(validation accuracy\)): ([\d.]+)%")


@dataclass
class ParsedRun:
    """One trial as its log tells it."""

    number: int  # 1-based
    expected: int = 0  # loops announced by "Loop i/N"
    loops: list[tuple[int, float, float]] = field(default_factory=list)  # (global loop, score, LKG)
    final_test: float | None = None
    bounty: float | None = None

    def curve(self, arch: str, mode: str) -> Curve:
        return Curve(
            arch,
            mode,
            self.number,
            [score for _, score, _ in self.loops],
            [lkg for _, _, lkg in self.loops],
            self.final_test,
        )


def logical_lines(lines: list[str]) -> list[str]:
    """The messages without their download time stamps, a wrapped record's indented rest joined to it."""
    joined: list[str] = []
    for line in lines:
        message = STAMP.sub("", line, count=1).rstrip()
        if joined and message[:1].isspace() and message.strip() and not RECORD.match(message):
            joined[-1] += " " + message.strip()
        else:
            joined.append(message)
    return [" ".join(message.split()) for message in joined]


def parse_log(lines: list[str]) -> list[ParsedRun]:
    runs: dict[int, ParsedRun] = {}
    current = 0
    for line in logical_lines(lines):
        tag, loop = TAG.search(line), LOOP.search(line)
        if tag:
            current = int(tag[1])
        elif loop and (current not in runs or int(loop[2]) <= runs[current].loops[-1][0]):
            current += 1  # untagged: the loop count started again, so a new trial did
        if loop:
            run = runs.setdefault(current, ParsedRun(current))
            global_loop = int(loop[2])
            if run.loops and global_loop <= run.loops[-1][0]:
                run.loops, run.final_test, run.bounty = [], None, None  # the trial was run again from the start
            run.expected = int(loop[1])
            run.loops.append((global_loop, float(loop[3]), float(loop[4])))
        if current in runs:
            for pattern, name in ((FINAL, "final_test"), (BOUNTY, "bounty")):
                if found := pattern.search(line):
                    setattr(runs[current], name, float(found[1]))
    return [runs[number] for number in sorted(runs)]


def job_logs(logs_dir: Path) -> tuple[dict[str, Path], list[str]]:
    """The folder of the latest job of each cell, by job name, and a message per folder left out."""
    folders, problems = {}, []
    for folder in sorted(p for p in Path(logs_dir).iterdir() if p.is_dir()):
        try:
            folders[layout.check(folder.name)] = folder
        except PSAError as error:
            problems.append(f"{folder}: {error}")
    problems += [
        f"{job}: a shard's job, its log interleaves many cells; not read (use psa cloud collect)"
        for job in folders
        if layout.shard(job)
    ]
    latest = set(layout.latest_per_cell(list(folders)).values())
    return {job: folder for job, folder in folders.items() if job in latest}, problems


def parse_logs(logs_dir: Path | str) -> tuple[list[Curve], list[str]]:
    """Every trial's meta-loops, and what was wrong (cut-off trials, logless jobs)."""
    if not Path(logs_dir).is_dir():
        raise PSAError(f"logs folder not found: {logs_dir}; download logs with sagemaker-get-training-logs")
    jobs, problems = job_logs(Path(logs_dir))
    curves = []
    for job, folder in track(list(jobs.items()), description="Parsing logs"):
        arch, mode = layout.cell(job)
        # The original's downloader nests each stream one folder deeper than psa's does.
        lines = [
            line
            for path in sorted(folder.rglob("*.log"))
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        ]
        runs = parse_log(lines)
        if not runs:
            problems.append(f"{job}: no meta-loop lines in its logs")
        for run in runs:
            if len(run.loops) < run.expected:
                problems.append(
                    f"{job}: trial {run.number} ends after {len(run.loops)} of "
                    f"{run.expected} meta-loops (log cut off mid-trial)"
                )
            curves.append(run.curve(arch, mode))
    return curves, problems
