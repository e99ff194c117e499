import os
from pathlib import Path

import pytest

# One thread unless the environment says otherwise: tests compare results across runs, and a
# thread count that follows the machine's load (psa.trial.device.idle_cores) would vary between them.
os.environ.setdefault("PSA_THREADS", "1")

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# CI (CI=true) installs every service and package the tests use (.ci/run): there, a skipped test is
# a failure, so that a missing service can never turn the run green. Only a GPU may be missing.
IN_CI = os.environ.get("CI") == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and item.get_closest_marker("gpu") is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome, report.longrepr = "failed", f"skipped in CI, where nothing may be missing: {reason}"


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
