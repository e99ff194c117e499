"""MNIST from the four IDX files, verified, normalised, split 50k/10k exactly as the study did,
and held in memory as tensors so training never indexes samples one by one in Python."""

import gzip
import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from psa.errors import PSAError
from psa.files import cache_dir as user_cache
from psa.files import write_atomic

SHA256 = {  # of the decompressed content (docs/DESIGN.md section 2)
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
MEAN, STD = 0.1307, 0.3081
NORMALISE = (1 / (255 * STD), -MEAN / STD)  # input = scale * pixel + shift, the same map as _images'
SPLIT_SEED, TRAIN_SIZE, VAL_SIZE = 1337, 50_000, 10_000


@dataclass
class MNIST:
    """Normalised images (N, 784) float32 and labels (N,) int64 for each split, and the training
    images' uint8 pixels where float32 training on a CPU reads them instead (a quarter of the bytes;
    psa.engine.batched.native): None elsewhere, and in float64, whose training exists to match
    psa.engine.reference to the last digits on the normalised images themselves."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    y_full_train: torch.Tensor  # all 60k training labels, for dataset analysis
    train_indices: torch.Tensor  # positions in the 60k set, in split order
    val_indices: torch.Tensor
    source: Path
    pixels_train: torch.Tensor | None = None

    def to(self, device, dtype=torch.float32) -> "MNIST":
        move = lambda x: x.to(device=device, dtype=dtype)  # noqa: E731
        pixels = self.pixels_train if torch.device(device).type == "cpu" and dtype == torch.float32 else None
        return MNIST(
            move(self.x_train),
            self.y_train.to(device),
            move(self.x_val),
            self.y_val.to(device),
            move(self.x_test),
            self.y_test.to(device),
            self.y_full_train,
            self.train_indices,
            self.val_indices,
            self.source,
            pixels,
        )


def cache_dir() -> Path:
    return user_cache("mnist")


def split_indices() -> tuple[torch.Tensor, torch.Tensor]:
    """The permutation torch.utils.data.random_split(range(60000), [50000, 10000],
    generator=manual_seed(1337)) draws: train = its first 50,000 entries, validation the rest."""
    order = torch.randperm(TRAIN_SIZE + VAL_SIZE, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return order[:TRAIN_SIZE], order[TRAIN_SIZE:]


def _candidates(directory: Path, name: str) -> list[Path]:
    return [directory / name, directory / f"{name}.gz"]


def _read_verified(path: Path, name: str) -> bytes:
    try:
        raw = path.read_bytes()
        content = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise PSAError(f"MNIST file {path} cannot be read ({error}); replace it with a good copy") from None
    digest = hashlib.sha256(content).hexdigest()
    if digest != SHA256[name]:
        raise PSAError(
            f"MNIST file {path} is corrupt: SHA-256 of its content is {digest[:16]}..., "
            f"expected {SHA256[name][:16]}...; delete it and supply a good copy "
            f"(--data-dir or PSA_DATA_DIR) or let psa download it"
        )
    return content


def _download(name: str, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in MIRRORS:
        url = f"{mirror}{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                payload = response.read()
        except OSError as error:
            errors.append(f"{url}: {error}")
            continue
        try:
            content = gzip.decompress(payload)
        except (OSError, EOFError):
            errors.append(f"{url}: not a gzip file")
            continue
        if hashlib.sha256(content).hexdigest() != SHA256[name]:
            errors.append(f"{url}: wrong SHA-256")
            continue
        return write_atomic(directory / f"{name}.gz", lambda tmp, payload=payload: tmp.write_bytes(payload))
    raise PSAError(
        f"could not download MNIST file {name} ({'; '.join(errors)}); put the four IDX files in a "
        f"folder and pass --data-dir or set PSA_DATA_DIR, or copy them to {directory}"
    )


def locate(name: str, data_dir: Path | str | None = None, download: bool = True) -> bytes:
    """Content of one IDX file, searched in: data_dir, $PSA_DATA_DIR, the user cache, a download.
    An explicit directory (argument or variable) must hold the file: no silent fallback past it."""
    explicit = data_dir or os.environ.get("PSA_DATA_DIR")
    if explicit:
        directory = Path(explicit)
        for path in _candidates(directory, name):
            if path.is_file():
                return _read_verified(path, name)
        raise PSAError(
            f"MNIST file {name}(.gz) not found in {directory} "
            f"(from {'--data-dir' if data_dir else 'PSA_DATA_DIR'}); put the four IDX files there"
        )
    for path in _candidates(cache_dir(), name):
        if path.is_file():
            return _read_verified(path, name)
    if not download:
        raise PSAError(f"MNIST file {name} not found; pass --data-dir or set PSA_DATA_DIR, or copy it to {cache_dir()}")
    return _read_verified(_download(name, cache_dir()), name)


def parse_idx(content: bytes, name: str) -> np.ndarray:
    """IDX format: 2 zero bytes, a type byte (0x08 = uint8), a dimension count, big-endian sizes."""
    if len(content) < 4 or content[:2] != b"\0\0" or content[2] != 0x08:
        raise PSAError(f"MNIST file {name} is not an IDX file of unsigned bytes")
    ndim = content[3]
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise PSAError(f"MNIST file {name} is truncated: header says {shape}, holds {data.size} bytes")
    return data.reshape(shape)


def _pixels(content: bytes, name: str) -> torch.Tensor:
    return torch.from_numpy(parse_idx(content, name).reshape(-1, 28 * 28).astype(np.uint8))


def _images(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels.float() / 255.0 - MEAN) / STD


def load_mnist(data_dir: Path | str | None = None, download: bool = True) -> MNIST:
    files = {name: locate(name, data_dir, download) for name in SHA256}
    train_pixels = _pixels(files["train-images-idx3-ubyte"], "train-images-idx3-ubyte")
    train_x = _images(train_pixels)
    train_y = torch.from_numpy(parse_idx(files["train-labels-idx1-ubyte"], "train-labels-idx1-ubyte").astype(np.int64))
    test_x = _images(_pixels(files["t10k-images-idx3-ubyte"], "t10k-images-idx3-ubyte"))
    test_y = torch.from_numpy(parse_idx(files["t10k-labels-idx1-ubyte"], "t10k-labels-idx1-ubyte").astype(np.int64))
    train_idx, val_idx = split_indices()
    source = Path(data_dir or os.environ.get("PSA_DATA_DIR") or cache_dir())
    return MNIST(
        train_x[train_idx],
        train_y[train_idx],
        train_x[val_idx],
        train_y[val_idx],
        test_x,
        test_y,
        train_y,
        train_idx,
        val_idx,
        source,
        train_pixels[train_idx],
    )
