import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from psa.cli import COMMANDS, build_parser, script_argv


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
