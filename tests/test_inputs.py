"""Bad input, as a user types or leaves it: each gets exit status 2, one line saying `error:` and
what is wrong, no traceback, and nothing written or changed."""

import os

import pytest
import torch

from psa.cli import main
from psa.engine import checkpoint
from psa.errors import PSAError


def run(capsys, *argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
        raise SystemExit(0)
    captured = capsys.readouterr()
    return done.value.code, captured.out + captured.err


def files(folder) -> dict:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


TRAIN = ["train", "--arch", "1*4", "--meta-loops", "1"]
SWEEP = ["sweep", "--arch", "1*4", "--trials", "1", "--meta-loops", "1", "--modes", "none"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (TRAIN + ["--batch-size", "0"], "argument --batch-size: must be at least 1, not 0"),
        (TRAIN + ["--batch-size", "-5"], "argument --batch-size: must be at least 1, not -5"),
        (TRAIN + ["--dropout", "1.5"], "argument --dropout: must be a finite number in [0, 1), not 1.5"),
        (TRAIN + ["--dropout", "-0.5"], "argument --dropout: must be a finite number in [0, 1), not -0.5"),
        (TRAIN + ["--lr", "-1"], "argument --lr: must be a finite number > 0, not -1"),
        (TRAIN + ["--lr", "nan"], "argument --lr: must be a finite number > 0, not nan"),
        (["train", "--arch", "1*4", "--meta-loops", "0"], "argument --meta-loops: must be at least 1, not 0"),
        (TRAIN + ["--device", "gpu"], "argument --device: expected cpu, mps, cuda or cuda:N, not 'gpu'"),
        (SWEEP + ["--trials", "0"], "argument --trials: must be at least 1, not 0"),
        (SWEEP + ["--pack", "0"], "argument --pack: must be at least 1, not 0"),
        (SWEEP + ["--max-memory", "-2"], "argument --max-memory: must be a finite number > 0, not -2"),
        (SWEEP + ["--threads", "0"], "argument --threads: must be at least 1, not 0"),
        (SWEEP + ["--weight-decay", "inf"], "argument --weight-decay: must be a finite number >= 0, not inf"),
        (["regimes", "--zeror", "120"], "argument --zeror: must be a finite number in [0, 100], not 120"),
        (["bench", "--estimate-sweep", "--steps", "x"], "argument --steps: expected a whole number, not 'x'"),
    ],
)
def test_numbers_are_checked_as_they_are_parsed(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    code, text = run(capsys, *argv)
    assert code == 2 and message in text and "error:" in text, text
    assert len(text.strip().splitlines()) == 1 and "Traceback" not in text
    assert not list(tmp_path.iterdir())


def test_a_checkpoint_with_damaged_weights_is_refused_and_kept(tmp_path, capsys):
    folder = tmp_path / "models"
    assert run(capsys, *TRAIN, "--seed", "3", "--model-dir", str(folder))[0] == 0
    path = checkpoint.default_path(folder, "simplemlp")
    data = bytearray(path.read_bytes())
    data[-40:-20] = bytes(20)  # tensor bytes at the end of the file; the header stays intact
    path.write_bytes(bytes(data))
    code, text = run(capsys, *TRAIN, "--model-dir", str(folder))
    assert code == 2 and "do not match their checksum" in text and str(path) in text and "Traceback" not in text
    assert len(text.strip().splitlines()) == 1
    assert path.read_bytes() == bytes(data)


def test_non_utf8_inputs_name_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs.txt").write_bytes("1*4\n2*8 # caf\u00e9\n".encode("latin-1"))
    (tmp_path / "trials.md").write_bytes(b"### Architecture: 1*4\n\xff\xfe\n")
    before = files(tmp_path)
    for argv, message in (
        (
            ["sweep", "--configs", "configs.txt", "--trials", "1", "--meta-loops", "1"],
            "configuration file configs.txt is not UTF-8 text",
        ),
        (["regimes", "--trials-file", "trials.md", "--zeror", "11"], "results file trials.md is not UTF-8 text"),
    ):
        code, text = run(capsys, *argv)
        assert code == 2 and message in text and "Traceback" not in text, text
    assert files(tmp_path) == before


def test_without_data_the_error_says_how_to_supply_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PSA_DATA_DIR", str(tmp_path / "nowhere"))
    code, text = run(capsys, *SWEEP, "--store", "s.sqlite")
    assert code == 2 and "PSA_DATA_DIR" in text and "not found" in text
    assert not list(tmp_path.iterdir())  # no store made before the data was found
    monkeypatch.delenv("PSA_DATA_DIR")
    code, text = run(capsys, *SWEEP, "--data-dir", str(tmp_path / "elsewhere"), "--store", "s.sqlite")
    assert code == 2 and "--data-dir" in text and "elsewhere" in text


def test_clean_deletes_only_psa_checkpoints_in_the_model_folder(tmp_path, capsys):
    folder = tmp_path / "models"
    checkpoint.save(checkpoint.default_path(folder, "simplemlp"), {"w": torch.zeros(1)}, {})
    notes, store = folder / "notes.txt", folder / "psa.sqlite"
    notes.write_text("my notes\n")
    store.write_bytes(b"SQLite format 3\x00" + bytes(100))
    outside = tmp_path / "psa_simplemlp_lkg.safetensors"
    checkpoint.save(outside, {"w": torch.zeros(1)}, {})
    before = files(tmp_path)
    code, text = run(capsys, "clean", str(notes), str(store), str(outside), "--model-dir", str(folder))
    assert (
        code == 2
        and "refused to delete" in text
        and "not a psa checkpoint" in text
        and "not in the model folder" in text
    )
    assert files(tmp_path) == before
    code, text = run(capsys, "clean", "--all", "--model-dir", str(folder))
    assert code == 0 and sorted(p.name for p in folder.iterdir()) == ["notes.txt", "psa.sqlite"]
    assert os.path.exists(outside)


def test_files_and_folders_mistaken_for_each_other_are_named_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("mine\n")
    (tmp_path / "a_dir").mkdir()
    before = sorted(tmp_path.rglob("*")), files(tmp_path)
    for argv, message in (
        (TRAIN + ["--model-dir", "a_file"], "--model-dir a_file is a file; give a folder"),
        (["export", "--store", "a_dir"], "results store a_dir is a folder, not a file"),
        (["export", "--store", "a_file", "--out", "a_file"], "--out a_file is a file; give a folder"),
        (["reproduce", "--out", "a_file"], "--out a_file is a file; give a folder"),
        (["make-design-space-figure", "--output-file", "a_dir"], "--out a_dir is a folder; give a file name"),
        (["sweep", "--configs", "a_dir"], "configuration file a_dir is a folder, not a file"),
        (SWEEP + ["--store", "a_dir"], "--store a_dir is a folder; give a file name"),
        (SWEEP + ["--store", "a_file/psa.sqlite"], "a_file is a file, not a folder"),
    ):
        code, text = run(capsys, *argv)
        assert code == 2 and message in text and "Traceback" not in text, text
        assert len(text.strip().splitlines()) == 1, text
    assert (sorted(tmp_path.rglob("*")), files(tmp_path)) == before


@pytest.mark.parametrize("command", [TRAIN, SWEEP])
def test_an_architecture_too_large_for_memory_is_refused_before_any_allocation(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    code, text = run(capsys, *command, "--arch", "1*100000000")
    assert code == 2 and "architecture 1*100000000: one trial needs" in text and "GiB" in text, text
    assert len(text.strip().splitlines()) == 1 and not list(tmp_path.iterdir())


def test_clean_follows_its_own_advice_and_leaves_foreign_files_alone(tmp_path, capsys):
    folder = tmp_path / "models"
    path = checkpoint.default_path(folder, "simplemlp")
    checkpoint.save(path, {"w": torch.zeros(1)}, {})
    path.write_bytes(bytes(64))  # damaged beyond its header
    with pytest.raises(PSAError) as refused:
        checkpoint.load(path)
    advice = str(refused.value).split("(psa clean ")[1].split(")")[0].split()
    foreign = folder / "someone_elses.safetensors"
    foreign.write_bytes(b"not mine")
    assert run(capsys, "clean", *advice)[0] == 0 and not path.exists()
    checkpoint.save(path, {"w": torch.zeros(1)}, {})
    code, text = run(capsys, "clean", "--all", "--model-dir", str(folder))
    assert code == 0 and f"left {foreign} alone: not a readable psa checkpoint" in text
    assert sorted(folder.iterdir()) == [foreign] and foreign.read_bytes() == b"not mine"
