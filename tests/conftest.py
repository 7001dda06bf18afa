import os
import signal
import sys
from pathlib import Path

# Before torch loads its OpenMP runtime (it reads the policy then): threads that wait at a barrier sleep instead of
# spinning. On a 2-core machine shared with other work, spinning threads of a 2-thread test wait for each other's
# time slices: a 2-thread augment test took 98 s beside two busy loops, 16 s with passive waiting (about 5% slower
# on a quiet machine). The commands the tests start inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)

from tiny_models import write_tiny_stable_diffusion, write_tiny_testbed  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_delivered():
    """Ctrl-C as a terminal delivers it, however the suite was launched. A process started with SIGINT ignored
    (``nohup``, a background job of a non-interactive shell, some CI runners) gets no KeyboardInterrupt, and the
    processes it starts inherit the ignored signal; the tests of Ctrl-C need the default disposition, in this
    process and in the commands it starts (a handled signal is reset to the default across exec)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(scope="session")
def tiny_testbed_dir(tmp_path_factory) -> Path:
    return write_tiny_testbed(tmp_path_factory.mktemp("tiny_testbed"))


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory) -> Path:
    return write_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny_sd"))
