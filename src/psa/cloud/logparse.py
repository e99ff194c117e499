"""`sagemaker-logs-parser`: downloaded job logs turned into the convergence and LKG growth tables:
the study's (a row per job: the maximum over its trials, psa.series) and a row per trial beside.

A job's log holds its trials' meta-loop lines (docs/DESIGN.md section 6). In the project's own logs
every trial line is tagged `Trial <k>/<N> | ` (see psa.cloud.job); untagged logs, which run their
trials one after another, start a new trial whenever the loop count starts again. A tagged trial
whose loop count starts again was rerun (a spot job restarted): its last run counts. A trial
with fewer loops than its lines announce was cut off; it is kept as far as it got, and reported.
Only the latest job of each architecture x mode is read."""

import re
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import track

from psa import PSAError
from psa.cloud import layout
from psa.series import Curve

TAG = re.compile(r"\bTrial (\d+)/(\d+) \|")
LOOP = re.compile(r"Loop \d+/(\d+) \(Global: (\d+)\) \| Current: ([\d.]+)% \| LKG: ([\d.]+)% \| Bounty: ([\d.]+)%")
FINAL = re.compile(r"Final Test: ([\d.]+)%")


@dataclass
class TrialLog:
    number: int  # 1-based
    expected: int = 0  # loops announced by "Loop i/N"
    loops: list[tuple[int, float, float]] = field(default_factory=list)  # (global loop, score, LKG)
    final_test: float | None = None

    def curve(self, arch: str, mode: str) -> Curve:
        return Curve(
            arch,
            mode,
            self.number,
            [score for _, score, _ in self.loops],
            [lkg for _, _, lkg in self.loops],
            self.final_test,
        )


def parse_log(lines: list[str]) -> list[TrialLog]:
    trials: dict[int, TrialLog] = {}
    current = 0
    for line in lines:
        tag, loop, final = TAG.search(line), LOOP.search(line), FINAL.search(line)
        if tag:
            current = int(tag[1])
        elif loop and (current not in trials or int(loop[2]) <= trials[current].loops[-1][0]):
            current += 1  # untagged: the loop count started again, so a new trial did
        if loop:
            trial = trials.setdefault(current, TrialLog(current))
            global_loop = int(loop[2])
            if trial.loops and global_loop <= trial.loops[-1][0]:
                trial.loops, trial.final_test = [], None  # the trial was run again from the start
            trial.expected = int(loop[1])
            trial.loops.append((global_loop, float(loop[3]), float(loop[4])))
        if final and current in trials:
            trials[current].final_test = float(final[1])
    return [trials[number] for number in sorted(trials)]


def job_logs(logs_dir: Path) -> tuple[dict[str, Path], list[str]]:
    """The folder of the latest job of each cell, by job name, and a message per rejected folder."""
    folders, problems = {}, []
    for folder in sorted(p for p in Path(logs_dir).iterdir() if p.is_dir()):
        try:
            folders[layout.check(folder.name)] = folder
        except PSAError as error:
            problems.append(f"{folder}: {error}")
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
        lines = [
            line
            for path in sorted(folder.glob("*.log"))
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        ]
        trials = parse_log(lines)
        if not trials:
            problems.append(f"{job}: no meta-loop lines in its logs")
        for trial in trials:
            if len(trial.loops) < trial.expected:
                problems.append(
                    f"{job}: trial {trial.number} ends after {len(trial.loops)} of "
                    f"{trial.expected} meta-loops (log cut off mid-trial)"
                )
            curves.append(trial.curve(arch, mode))
    return curves, problems
