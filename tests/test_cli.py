import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib

from psa.cli import COMMANDS, build_parser, script_argv
from psa.trial import device


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser(name).parse_args([name, "--help"])
    assert exit_info.value.code == 0
    assert "usage: psa " + name in capsys.readouterr().out


def test_every_installed_script_runs_a_command():
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    scripts = pyproject["project"]["scripts"]
    assert scripts.pop("psa") == "psa.cli:main" and set(scripts.values()) == {"psa.cli:main"}
    for name in scripts:
        argv = script_argv(name)
        assert argv and argv[0] in COMMANDS, name
    assert script_argv("sagemaker-launch") == ["cloud", "launch"] and script_argv("psa") == []


def test_console_script_alias_and_unknown_command():
    done = subprocess.run([sys.executable, "-m", "psa", "bogus"], capture_output=True, text=True)
    assert done.returncode == 2 and "invalid choice: 'bogus'" in done.stderr


def test_default_threads_leave_the_cores_that_other_programs_use():
    """Two CPU-bound programs running: the default thread count leaves their cores to them."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(0.5)
        assert 1 <= device.idle_cores() <= max(1, device.usable_cores() - 2)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
