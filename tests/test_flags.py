"""One vocabulary across every command: each idea has one public flag, the seed one default, and
every spelling that once worked (psa's earlier ones, the original study's scripts') still parses."""

import argparse

import pytest

from psa.cli import COMMANDS, build_parser
from psa.sweeps.settings import SEED

# The ideas that several commands share, and every flag that has ever spelt them.
CONCEPTS = {
    "architectures file": {"--configs", "--config-file", "--order"},
    "output": {"--out", "--output", "--output-dir", "--output-file"},
    "trials table": {"--trials-file", "--ours"},
    "summary table": {"--summary-file", "--datafile"},
    "convergence table": {"--convergence-file", "--ours-convergence"},
    "logs folder": {"--logs-dir", "--logs"},
    "ablation mode": {"--mode", "--modes", "--ablation-mode"},
    "model family": {"--model", "--family"},
    "results store": {"--store"},
    "seed": {"--seed", "--base-seed"},
}


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, the cloud tools' under `cloud NAME`."""
    found = {}

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
        found[path] = parser

    for name in COMMANDS:
        walk(build_parser(name)._subparsers._group_actions[0].choices[name], name)
    return found


def public_flags(parser) -> dict[str, argparse.Action]:
    return {
        flag: action
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for flag in action.option_strings
        if flag.startswith("--")
    }


def test_every_idea_has_one_public_name_across_all_commands():
    used = {concept: set() for concept in CONCEPTS}
    for parser in parsers().values():
        for flag in public_flags(parser):
            for concept, spellings in CONCEPTS.items():
                if flag in spellings:
                    used[concept].add(flag.removesuffix("s"))  # --mode for one, --modes for several
    assert {concept: names for concept, names in used.items() if len(names) > 1} == {}
    assert used["output"] == {"--out"} and used["architectures file"] == {"--config"}


def test_every_command_that_takes_a_seed_shows_the_same_default():
    seeds = {path: public_flags(p)["--seed"] for path, p in parsers().items() if "--seed" in public_flags(p)}
    assert {"train", "sweep", "reproduce", "regimes", "cloud launch", "cloud job", "cloud cost"} <= set(seeds)
    # export's and report's --seed pick trials out of a store (default: any); they draw nothing
    drawing = {path: action for path, action in seeds.items() if path not in ("export", "report")}
    assert {path: action.default for path, action in drawing.items()} == {path: SEED for path in drawing}
    assert all(f"default: {SEED}" in action.help or "%(default)" in action.help for action in drawing.values())


@pytest.mark.parametrize(
    "command, argv, dest, value",
    [
        ("train", ["--arch", "1*4", "--ablation-mode", "hidden"], "mode", "hidden"),
        ("regimes", ["--config-file", "c.txt", "--family", "resmlp"], "family", "resmlp"),
        ("make-trial-accuracy-table", ["--datafile", "s.md", "--order", "c.txt"], "summary_file", "s.md"),
        ("make-architecture-table", ["--config-file", "c.txt", "--output", "t.tex"], "out", "t.tex"),
        ("make-design-space-figure", ["--output-file", "f.png"], "out", "f.png"),
        ("make-figure-heatmaps", ["--trials-file", "t.md", "--output-dir", "figs"], "out", "figs"),
        ("make-convergence-plots", ["--logs", "logs", "--output-dir", "figs"], "logs_dir", "logs"),
        ("compare", ["--ours", "t.md", "--ours-convergence", "c.md"], "ours_convergence", "c.md"),
        ("cloud", ["parse-logs", "--logs-dir", "logs", "--output-dir", "out"], "out", "out"),
        ("cloud", ["storage", "--output", "r.json"], "out", "r.json"),
        ("sweep", ["--arch", "1*4", "--mode", "hidden"], "modes", "hidden"),
    ],
)
def test_old_and_original_spellings_still_parse(command, argv, dest, value):
    args = build_parser(command).parse_args([command, *argv])
    assert str(getattr(args, dest)) == value


def test_configs_takes_published_wherever_architectures_are_asked_for():
    """--configs has one meaning: a list of architectures, a file of L*W lines or `published`."""
    from psa.cli.options import run_settings
    from psa.published import CONFIGURATIONS

    taking = {path: parser for path, parser in parsers().items() if "--configs" in public_flags(parser)}
    expected = {"sweep", "reproduce", "export", "regimes", "compare", "bench", "slurm submit", "cloud launch"}
    assert expected <= set(taking)
    for path, parser in taking.items():
        assert public_flags(parser)["--configs"].type("published") == CONFIGURATIONS, path
    args = build_parser("sweep").parse_args(["sweep", "--configs", "published"])
    assert len(run_settings(args).archs) == 98
