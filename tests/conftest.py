import os
from pathlib import Path

import pytest

# One thread unless the environment says otherwise: tests compare results across runs, and a
# thread count that follows the machine's load (psa.trial.device.idle_cores) would vary between them.
os.environ.setdefault("PSA_THREADS", "1")

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def mnist():
    """MNIST as the loader finds it: --data-dir, $PSA_DATA_DIR or the user cache (the README's
    first command fills it); tests never download."""
    from psa.trial.data import load_mnist

    return load_mnist(download=False)


@pytest.fixture(scope="session")
def mnist_dir(mnist) -> Path:
    """The folder the MNIST files were found in."""
    return mnist.source


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """Real files of the original study that psa does not ship: the withdrawn ResMLP tables and
    samples of its cloud reports, to check shapes against."""
    return FIXTURES
