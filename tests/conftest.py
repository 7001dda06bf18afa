import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)

from tiny_models import write_tiny_stable_diffusion, write_tiny_testbed  # noqa: E402


@pytest.fixture(scope="session")
def tiny_testbed_dir(tmp_path_factory) -> Path:
    return write_tiny_testbed(tmp_path_factory.mktemp("tiny_testbed"))


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory) -> Path:
    return write_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny_sd"))
