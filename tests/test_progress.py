import io
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

import psa.published
from psa.progress import Reporter


def plain(every: float):
    out = io.StringIO()
    return Reporter(Console(file=out, width=300), trials=20, every=every), out


def test_without_a_terminal_progress_is_plain_lines():
    reporter, out = plain(every=0.0)
    assert not reporter.live  # a file is no terminal: no bars, whose redraws a log would fill with noise
    with reporter:
        reporter.group("1*4, 2*4", 10, loops=4, steps=2)
        reporter.step()
        reporter.loop_done(1)
        reporter.loop_done(2)
        reporter.group_done()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert "trials 0/20 done | 1*4, 2*4: batch 1/2 of loop 1/4 |" in lines[0]
    assert "trials 0/20 done | 1*4, 2*4: loop 2/4 | elapsed 0m00s | ETA " in lines[2]
    assert "\x1b" not in out.getvalue()  # no terminal control codes


def test_plain_lines_come_at_most_every_interval():
    reporter, out = plain(every=3600.0)
    with reporter:
        reporter.group("1*4", 10, loops=100, steps=196)
        for loop in range(1, 50):
            reporter.step()
            reporter.loop_done(loop)
    assert out.getvalue() == ""


def test_piped_output_is_never_wrapped_or_cut():
    """Through a pipe (no terminal) a table row stays one line, however long: each regime's row
    holds as many architectures as its count says, and nothing is elided."""
    published = Path(psa.published.__file__).parent / "psa_simplemlp_trials.md"
    done = subprocess.run(
        [sys.executable, "-m", "psa", "regimes", "--trials-file", str(published)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split("│")[1:4] for line in done.stdout.splitlines() if line.startswith("│ I")]
    assert len(rows) == 4
    for regime, count, archs in rows:
        assert len(archs.split(",")) == int(count), regime
    assert "…" not in done.stdout and max(len(line) for line in done.stdout.splitlines()) > 200
