import importlib.metadata
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib

import psa
from psa.cli import COMMANDS, build_parser, main, script_argv
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


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == f"psa {psa.__version__}\n"


def test_every_install_hint_names_this_distribution_or_another_real_one():
    """`psa` on the package index is another project: no printed or documented hint installs it."""
    root = Path(__file__).parents[1]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert pyproject["name"] == psa.DISTRIBUTION != "psa"
    assert importlib.metadata.version(psa.DISTRIBUTION) == psa.__version__  # installed under that name
    texts = [path.read_text() for path in (root / "src").rglob("*.py")]
    texts += [path.read_text() for path in [root / "README.md", *(root / "docs").glob("*.md")]]
    hints = re.findall(r"pip install (?:-e )?([^\s`'\")]+)", "\n".join(texts))
    assert {"submitit", "tensorboard"} <= set(hints)
    assert [hint for hint in hints if re.match(r"psa\b", hint)] == []
