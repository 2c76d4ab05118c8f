import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LESSON7_OFFLINE", "1")  # tests never download weights
if "LESSON7_CACHE_DIR" not in os.environ:  # precision verdicts: never the user's cache folder
    import tempfile

    os.environ["LESSON7_CACHE_DIR"] = tempfile.mkdtemp(prefix="lesson7-test-cache-")

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture
def one_torch_thread():
    """One intra-op thread for tests of tiny models and tensors: threads gain nothing there, and
    on a busy machine OpenMP threads mostly wait. Use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA
