import os
import signal
import subprocess
import sys

import pytest
import torch

from helpers import subset
from psa.cli import main
from psa.engine import checkpoint
from psa.engine import reference as engine
from psa.trial.architecture import Architecture
from psa.trial.spec import Hyper, TrialSpec

ARCH = Architecture.parse("[2*8]")


def spec(mode="none", seed=5, arch=ARCH):
    return TrialSpec(arch, "simplemlp", mode, 0, seed, Hyper(lr=1e-3, batch_size=64))


def weights(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_lkg_changes_only_on_strict_improvement(mnist, monkeypatch):
    data = subset(mnist)
    scripted = iter([50.0, 50.0, 60.0, 40.0, 60.0, 60.5])
    monkeypatch.setattr(engine, "accuracy", lambda model, x, y: next(scripted))
    state = engine.new_state(spec("hidden"))
    seen = []
    records = engine.run_loops(
        spec("hidden"), data, state, 6, on_loop=lambda record, state: seen.append(weights(state.lkg))
    )
    assert [r.improved for r in records] == [True, False, True, False, False, True]
    assert [r.lkg_score for r in records] == [50, 50, 60, 60, 60, 60.5]
    assert state.bounty_loop == 6 and state.bounty == 60.5
    assert torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    assert torch.equal(seen[2], seen[3]) and torch.equal(seen[3], seen[4])


def test_ablations_never_accumulate(mnist, monkeypatch):
    """With no improvement after loop 1, every candidate is the LKG with exactly one neuron
    ablated (training switched off so the damage is visible)."""
    data = subset(mnist)
    monkeypatch.setattr(engine, "train_epoch", lambda *args: 0.0)  # the loss of an epoch that never trained
    zero_rows = []

    def score(model, x, y):
        zero_rows.append(sum(int((lin.weight == 0).all(1).sum()) for lin in model.linears))
        return 50.0 if len(zero_rows) == 1 else 10.0

    monkeypatch.setattr(engine, "accuracy", score)
    engine.run_loops(spec("full"), data, engine.new_state(spec("full")), 8)
    assert zero_rows == [0] + [1] * 7


def test_optimizer_is_fresh_each_loop(mnist, monkeypatch):
    created = []
    real = torch.optim.AdamW

    class Spy(real):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)
            created.append((self, kwargs))
            assert not self.state  # nothing carried over

    monkeypatch.setattr(torch.optim, "AdamW", Spy)
    engine.run_loops(spec("decay"), subset(mnist), engine.new_state(spec("decay")), 3)
    assert len({id(o) for o, _ in created}) == 3
    assert all(k["weight_decay"] == 1e-4 and k["lr"] == 1e-3 for _, k in created)
    created.clear()
    engine.run_loops(spec("none"), subset(mnist), engine.new_state(spec("none")), 1)
    assert created[0][1]["weight_decay"] == 0.0


def test_same_seed_same_numbers(mnist):
    data = subset(mnist)
    runs = [engine.run_loops(spec("dropout"), data, engine.new_state(spec("dropout")), 3) for _ in range(2)]
    assert [r.score for r in runs[0]] == [r.score for r in runs[1]]
    other = engine.run_loops(spec("dropout", seed=6), data, engine.new_state(spec("dropout", seed=6)), 3)
    assert [r.score for r in other] != [r.score for r in runs[0]]


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
        raise SystemExit(0)
    out = capsys.readouterr()
    return exit_info.value.code, out.out + out.err


def test_train_resumes_where_it_stopped(tmp_path, capsys):
    base = ["train", "--arch", "[1*4]", "--mode", "hidden", "--seed", "3"]
    code, straight = run_cli(capsys, *base, "--meta-loops", "3", "--model-dir", str(tmp_path / "a"))
    assert code == 0 and "Loop 3/3 (Global: 3)" in straight and "LKG test accuracy" in straight
    run_cli(capsys, *base, "--meta-loops", "2", "--model-dir", str(tmp_path / "b"))
    code, resumed = run_cli(capsys, *base, "--meta-loops", "1", "--model-dir", str(tmp_path / "b"))
    assert code == 0 and "Resuming" in resumed and "Loop 1/1 (Global: 3)" in resumed
    last = lambda text: [line.split("| ", 1)[1] for line in text.splitlines() if line.startswith("Loop ")][-1]  # noqa: E731
    assert last(resumed) == last(straight)  # resuming continues exactly as an unbroken run
    meta = checkpoint.load(tmp_path / "b" / "psa_simplemlp_lkg.safetensors")[1]
    assert meta["global_loop"] == 3 and meta["seed"] == 3 and meta["arch"] == "1*4"
    code, switched = run_cli(
        capsys, *base[:3], "--mode", "output", "--meta-loops", "1", "--model-dir", str(tmp_path / "b")
    )
    assert code == 0 and "switching mode hidden -> output" in switched and "(Global: 4)" in switched


def test_train_refuses_another_architecture_and_damaged_checkpoints(tmp_path, capsys):
    run_cli(capsys, "train", "--arch", "1*4", "--meta-loops", "1", "--seed", "1", "--model-dir", str(tmp_path))
    code, text = run_cli(capsys, "train", "--arch", "2*4", "--meta-loops", "1", "--model-dir", str(tmp_path))
    assert code == 2 and "holds a simplemlp 1*4" in text and "psa clean" in text
    path = tmp_path / "psa_simplemlp_lkg.safetensors"
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[: len(data) // 2]))
    code, text = run_cli(capsys, "train", "--arch", "1*4", "--meta-loops", "1", "--model-dir", str(tmp_path))
    assert code == 2 and "is damaged" in text and str(path) in text.replace("\n", "")
    assert path.read_bytes() == bytes(data[: len(data) // 2])  # nothing overwritten


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--arch", "[4*4,"], "malformed architecture"),
        (["--arch", "1*4", "--mode", "sideways"], "unknown ablation mode 'sideways'"),
        (["--arch", "1*4", "--data-dir", "/nonexistent/mnist"], "not found in /nonexistent/mnist"),
    ],
)
def test_user_errors_are_clear(tmp_path, capsys, argv, message):
    code, text = run_cli(capsys, "train", *argv, "--meta-loops", "1", "--model-dir", str(tmp_path))
    assert code == 2 and message in text.replace("\n", " ")
    assert not list(tmp_path.iterdir())


def test_clean(tmp_path, capsys):
    for model in ("simplemlp", "resmlp"):
        checkpoint.save(checkpoint.default_path(tmp_path, model), {"w": torch.zeros(1)}, {})
    extra = tmp_path / "other.safetensors"
    checkpoint.save(extra, {"w": torch.zeros(1)}, {})
    run_cli(capsys, "clean", "--model-dir", str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.safetensors", "psa_resmlp_lkg.safetensors"]
    run_cli(capsys, "clean", str(extra), "--model-dir", str(tmp_path))
    assert not extra.exists()
    code, text = run_cli(capsys, "clean", str(extra), "--model-dir", str(tmp_path))
    assert code == 2 and "no such file" in text
    run_cli(capsys, "clean", "--all", "--model-dir", str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_ctrl_c_keeps_the_lkg_and_reports_its_test_accuracy(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "psa",
            "train",
            "--arch",
            "1*4",
            "--meta-loops",
            "50",
            "--seed",
            "2",
            "--model-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Loop 2/50"):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.communicate(timeout=120)[0]
    text = "".join(lines) + rest
    assert proc.returncode == 130, text
    assert "Traceback" not in text and "LKG test accuracy" in text
    meta = checkpoint.load(tmp_path / "psa_simplemlp_lkg.safetensors")[1]
    assert 2 <= meta["global_loop"] < 50
