import gzip
import shutil

import pytest
import torch

from psa import PSAError
from psa.data import load_mnist, split_indices


def zeror(labels: torch.Tensor) -> float:
    return round(100 * torch.bincount(labels).max().item() / len(labels), 2)


def test_split_matches_random_split_with_seed_1337(mnist):
    train, val = split_indices()
    assert val[:5].tolist() == [18382, 16291, 8096, 15917, 13192]
    assert len(train) == 50_000 and len(val) == 10_000
    assert len(set(train.tolist()) | set(val.tolist())) == 60_000
    from torch.utils.data import random_split

    reference = random_split(range(60_000), [50_000, 10_000], generator=torch.Generator().manual_seed(1337))
    assert reference[1].indices[:100] == val[:100].tolist()


def test_zeror_baselines_per_split(mnist):
    assert zeror(mnist.y_full_train) == 11.24
    assert zeror(mnist.y_test) == 11.35
    assert zeror(mnist.y_train) == 11.28
    assert zeror(mnist.y_val) == 11.02


def test_images_are_normalised(mnist):
    assert mnist.x_train.shape == (50_000, 784) and mnist.x_train.dtype == torch.float32
    assert abs(mnist.x_train.mean().item()) < 0.01 and abs(mnist.x_train.std().item() - 1) < 0.01


def test_raw_idx_files_load_like_gzip(tmp_path, mnist, reference):
    source = reference.parents[1] / "data" / "mnist"
    for gz in source.glob("*-ubyte.gz"):
        (tmp_path / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    raw = load_mnist(tmp_path)
    assert torch.equal(raw.x_val, mnist.x_val) and torch.equal(raw.y_test, mnist.y_test)


def test_missing_file_names_it(tmp_path, reference):
    source = reference.parents[1] / "data" / "mnist"
    for gz in source.glob("*-ubyte.gz"):
        shutil.copy(gz, tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(PSAError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


def test_corrupt_file_is_refused_not_replaced(tmp_path, reference):
    source = reference.parents[1] / "data" / "mnist"
    for gz in source.glob("*-ubyte.gz"):
        shutil.copy(gz, tmp_path)
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(bad.read_bytes()))
    content[100] ^= 0xFF
    bad.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(PSAError, match="train-labels-idx1-ubyte.gz is corrupt"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(PSAError, match="cannot be read|corrupt"):
        load_mnist(tmp_path)
