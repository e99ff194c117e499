import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REFERENCE = SHARED / "reference" / "psa-simplemlp"
os.environ.setdefault("PSA_DATA_DIR", str(SHARED / "data" / "mnist"))


@pytest.fixture(scope="session")
def mnist():
    from psa.data import load_mnist

    return load_mnist()


@pytest.fixture(scope="session")
def reference() -> Path:
    """The published artifacts of the original SimpleMLP study."""
    return REFERENCE
