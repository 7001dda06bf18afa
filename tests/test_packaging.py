"""The light core, and the documentation site: the geometry runs with torch, numpy and scipy alone; the command
line says which extra it needs; `mkdocs build --strict` passes (warnings and broken links fail)."""

import importlib.util
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ["diffusers", "transformers", "safetensors", "PIL", "imageio", "matplotlib", "tqdm", "filelock", "gradio",
          "ray"]
BLOCK = f"import sys\nfor m in {EXTRAS!r}: sys.modules[m] = None\n"


def test_core_dependencies_are_the_geometrys():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(d.split(">")[0].split("=")[0] for d in project["dependencies"]) == ["numpy", "scipy", "torch"]
    assert "diffusers>=0.27" in project["optional-dependencies"]["models"]


def test_the_geometry_runs_without_the_model_stack():
    code = BLOCK + (
        "import torch, seedspace as ss\n"
        "a, b = torch.randn(4, 8, 8, dtype=torch.float64), torch.randn(4, 8, 8, dtype=torch.float64)\n"
        "path = ss.interpolate(a, b, steps=5, prior=ss.ChiPrior(256, scale=0.9))\n"
        "assert torch.equal(path[0], a) and path.shape == (5, 4, 8, 8)\n"
        "assert ss.centroid(torch.stack([a, b])).shape == (4, 8, 8) and ss.distance(a, b) > 0\n"
        "assert len(ss.cluster(torch.randn(6, 4, 8, 8), 2).labels) == 6\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_the_command_line_names_the_extra_it_needs():
    code = BLOCK + "from seedspace.cli.main import main\nsys.exit(main(['interpolate', '--help']))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and "pip install 'seedspace[models]'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="the docs extra is not installed")
def test_the_documentation_builds_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    proc = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def test_the_version_has_one_source():
    """pyproject.toml takes the version from seedspace/_version.py (what run records and --version report), and
    the changelog's newest entry is that version."""
    import seedspace

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "seedspace._version.__version__"}
    headings = [line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## ")]
    assert headings and headings[0].split()[1] == seedspace.__version__


def test_the_wheel_carries_the_testbeds(tmp_path):
    """The documented wheel (`pip wheel . --no-deps`, offline here with --no-build-isolation) holds the package, its
    version from _version.py, and every file of the embedded testbeds, so that `ss.load_model()` works from it."""
    import zipfile

    import seedspace

    tracked = subprocess.run(["git", "ls-files", "pyproject.toml", "README.md", "LICENSE", "seedspace"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    src = tmp_path / "src"  # a copy, so the build leaves nothing in the working tree
    for name in tracked:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist")], cwd=src, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name == f"seedspace-{seedspace.__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    weights = {n for n in tracked if n.startswith("seedspace/testbed/weights/")}
    assert {"seedspace/testbed/weights/testbed.json", "seedspace/testbed/weights/flow/unet/config.json",
            "seedspace/testbed/weights/unet/diffusion_pytorch_model.safetensors"} <= weights
    assert weights <= names, sorted(weights - names)
    assert "seedspace/cli/main.py" in names and not any(n.startswith(("tests/", "examples/")) for n in names)
