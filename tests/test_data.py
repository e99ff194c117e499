import gzip
import shutil

import pytest
import torch

from psa.errors import PSAError
from psa.trial.data import load_mnist, split_indices


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


def test_raw_idx_files_load_like_gzip(tmp_path, mnist, mnist_dir):
    source = mnist_dir
    for gz in source.glob("*-ubyte.gz"):
        (tmp_path / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    raw = load_mnist(tmp_path)
    assert torch.equal(raw.x_val, mnist.x_val) and torch.equal(raw.y_test, mnist.y_test)


def test_missing_file_names_it(tmp_path, mnist_dir):
    source = mnist_dir
    for gz in source.glob("*-ubyte.gz"):
        shutil.copy(gz, tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(PSAError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


def test_corrupt_file_is_refused_not_replaced(tmp_path, mnist_dir):
    source = mnist_dir
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


@pytest.fixture
def mirror(tmp_path, mnist_dir):
    """The MNIST files served over HTTP on 127.0.0.1, as a public mirror would."""
    import functools
    import http.server
    import threading

    served = tmp_path / "mirror"
    served.mkdir()
    for gz in mnist_dir.glob("*-ubyte.gz"):
        shutil.copy(gz, served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_download_from_a_mirror_is_verified_and_cached(tmp_path, mirror, monkeypatch, mnist):
    from psa.trial import data

    served, url = mirror
    monkeypatch.delenv("PSA_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bad = served / "t10k-labels-idx1-ubyte.gz"
    good = bad.read_bytes()
    bad.write_bytes(gzip.compress(b"\0\0\x08\x01" + bytes(8)))
    monkeypatch.setattr(data, "MIRRORS", (url,))
    with pytest.raises(PSAError, match="t10k-labels-idx1-ubyte.*wrong SHA-256"):
        load_mnist()
    assert not (data.cache_dir() / "t10k-labels-idx1-ubyte.gz").exists()  # nothing unverified kept
    bad.write_bytes(good)
    loaded = load_mnist()
    assert torch.equal(loaded.y_val, mnist.y_val)
    assert sorted(p.name for p in data.cache_dir().iterdir()) == sorted(p.name for p in served.iterdir())
    (data.cache_dir() / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(PSAError, match="train-images-idx3-ubyte not found; pass --data-dir"):
        load_mnist(download=False)
