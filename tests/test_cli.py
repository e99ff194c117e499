import subprocess
import sys

import pytest

from psa.cli import COMMANDS, SCRIPTS, build_parser


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser(name).parse_args([name, "--help"])
    assert exit_info.value.code == 0
    assert "usage: psa " + name in capsys.readouterr().out


def test_scripts_map_to_commands():
    assert all(argv[0] in COMMANDS for argv in SCRIPTS.values())


def test_console_script_alias_and_unknown_command():
    done = subprocess.run([sys.executable, "-m", "psa", "bogus"], capture_output=True, text=True)
    assert done.returncode == 2 and "invalid choice: 'bogus'" in done.stderr
