"""``seedspace ui``: the four tasks called as the page's buttons call them, on the tiny testbed, their run folders
against the command line's; the page's error handling; and the page itself in headless Chromium."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from seedspace import outputs
from seedspace.backends.loading import load_model
from seedspace.cli.cmd_ui import is_loopback
from seedspace.cli.main import main
from seedspace.ui import Explorer

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def model(tiny_testbed_dir):
    return load_model(str(tiny_testbed_dir), dtype="auto")  # as `seedspace ui` loads it


@pytest.fixture
def explorer(model, tiny_testbed_dir, tmp_path) -> Explorer:
    return Explorer(model, str(tiny_testbed_dir), tmp_path / "runs")


@pytest.fixture(scope="module")
def fewshot_pngs(model, tmp_path_factory) -> list[str]:
    """Three real images of the testbed's few-shot set, as PNG files (what a user uploads)."""
    folder = tmp_path_factory.mktemp("fewshot")
    paths = []
    for i, image in enumerate(outputs.to_uint8(model.fewshot(1)[0][:3])):
        Image.fromarray(image[..., 0]).save(folder / f"shot{i}.png")
        paths.append(str(folder / f"shot{i}.png"))
    return paths


@pytest.fixture
def broken_png(tmp_path) -> str:
    path = tmp_path / "broken.png"
    path.write_bytes(b"this is not a PNG")
    return str(path)


def regenerates(frame: Path, tmp_path: Path) -> bool:
    return main(["regenerate", str(frame), "--out", str(tmp_path / f"again-{frame.stem}.png"), "--check",
                 "--quiet"]) == 0


def test_interpolate_writes_the_command_lines_run_folder(explorer, tiny_testbed_dir, tmp_path):
    result = explorer.interpolate("11", "42", methods=["lerp", "nao"], frames=3, class_value="class1")
    assert main(["interpolate", "--seeds", "11,42", "--compare", "lerp,nao", "--frames", "3", "--class", "class1",
                 "--model", str(tiny_testbed_dir), "--out", str(tmp_path / "cli"), "--quiet"]) == 0
    ui_run, cli_run = (json.loads((f / "run.json").read_text()) for f in (result.folder, tmp_path / "cli"))
    assert ui_run["parameters"] == cli_run["parameters"] and ui_run["frames"] == cli_run["frames"]
    assert ui_run["status"] == "completed"
    for frame in cli_run["frames"]:
        assert (result.folder / frame["file"]).read_bytes() == (tmp_path / "cli" / frame["file"]).read_bytes()
    assert (result.folder / "seeds.safetensors").read_bytes() == (tmp_path / "cli" / "seeds.safetensors").read_bytes()
    assert regenerates(result.folder / "frames" / "nao" / "frame000001.png", tmp_path)
    assert result.image == result.folder / "grid.png"
    with zipfile.ZipFile(result.archive) as archive:
        names = set(archive.namelist())
    assert {f"{result.folder.name}/run.json", f"{result.folder.name}/frames/lerp/frame000002.png"} <= names
    lines = result.plot.axes[0].get_lines()
    assert {line.get_label() for line in lines} >= {"lerp", "nao"}
    lerp = next(line for line in lines if line.get_label() == "lerp").get_ydata()
    nao = next(line for line in lines if line.get_label() == "nao").get_ydata()
    assert lerp[1] < min(lerp[0], lerp[2]) and nao[1] > lerp[1]  # LERP's midpoint leaves the shell inwards


def test_the_pages_prior_is_recorded_as_the_command_line_records_it(model, tiny_testbed_dir, tmp_path):
    """Explorer(prior=...) (``seedspace ui --prior``): NAO paths under that prior, the same run.json as
    ``interpolate --prior``; a bad prior fails when the page starts."""
    explorer = Explorer(model, str(tiny_testbed_dir), tmp_path / "runs", prior="scaled-chi:0.8")
    result = explorer.interpolate("11", "42", methods=["nao"], frames=3, class_value="class1")
    assert main(["interpolate", "--seeds", "11,42", "--method", "nao", "--frames", "3", "--class", "class1",
                 "--prior", "scaled-chi:0.8", "--model", str(tiny_testbed_dir), "--out", str(tmp_path / "cli"),
                 "--quiet"]) == 0
    ui_run, cli_run = (json.loads((f / "run.json").read_text()) for f in (result.folder, tmp_path / "cli"))
    assert ui_run["parameters"] == cli_run["parameters"] and ui_run["parameters"]["prior"]["scale"] == 0.8
    assert (result.folder / "seeds.safetensors").read_bytes() == (tmp_path / "cli" / "seeds.safetensors").read_bytes()
    with pytest.raises(ValueError, match="unknown prior"):
        Explorer(model, str(tiny_testbed_dir), tmp_path / "runs", prior="gaussian")


def test_the_models_prior_at_other_inversion_steps_is_fitted_as_the_command_line_fits_it(tmp_path):
    """--prior model (what `seedspace ui` passes by default) with uploads inverted at steps the model's prior was
    not calibrated at: the page records the scaled chi fitted to the endpoints, as the command line does, and says
    so, instead of the model's own prior."""
    boots = [str(ROOT / "examples" / f"ankle_boot_{i}.png") for i in (1, 2)]
    explorer = Explorer(load_model("testbed", dtype="float32"), "testbed", tmp_path / "runs", prior="model")
    result = explorer.interpolate(None, None, *boots, methods=["nao"], frames=3, class_value="9", steps=10)
    assert main(["interpolate", "--seeds", ",".join(boots), "--method", "nao", "--frames", "3", "--class", "9",
                 "--steps", "10", "--dtype", "float32", "--out", str(tmp_path / "cli"), "--quiet"]) == 0
    ui_run, cli_run = (json.loads((f / "run.json").read_text())["parameters"]
                       for f in (result.folder, tmp_path / "cli"))
    assert ui_run["prior"] == cli_run["prior"] and "fitted_to" in ui_run["prior"]["info"]
    assert "NAO uses a scaled chi fitted to the 2 seeds' own norms" in result.text
    assert (result.folder / "seeds.safetensors").read_bytes() == (tmp_path / "cli" / "seeds.safetensors").read_bytes()


def test_interpolate_inverts_uploads_and_reports_psnr(explorer, fewshot_pngs, tmp_path):
    progress = []
    result = explorer.interpolate(None, None, fewshot_pngs[0], fewshot_pngs[1], methods=["slerp"], frames=2,
                                  class_value="class1", progress=lambda f, text: progress.append((f, text)))
    assert "endpoint A (shot0.png): reconstruction PSNR" in result.text
    assert "endpoint B (shot1.png): reconstruction PSNR" in result.text
    endpoints = json.loads((result.folder / "run.json").read_text())["parameters"]["seeds"]
    kept = Path(endpoints[0]["image"])  # the upload is kept under the runs folder, where regenerate reads it
    assert kept.parent.parent == explorer.runs_dir.resolve() / "uploads" and kept.read_bytes() == \
        Path(fewshot_pngs[0]).read_bytes()
    assert progress[-1][0] == 1.0 and progress[-1][1] == "frames 2/2"
    assert regenerates(result.folder / "frames" / "frame000001.png", tmp_path)


def test_centroid_travel_and_norms_tasks(explorer, fewshot_pngs, tmp_path):
    centroid = explorer.centroid(fewshot_pngs, method="nao", frames=3, class_value="class1")
    record = json.loads((centroid.folder / "run.json").read_text())
    assert record["command"] == "centroid" and len(record["frames"]) == 1 + 3 * 3
    assert regenerates(centroid.folder / "centroid.png", tmp_path)
    assert len(centroid.plot.axes[0].get_lines()) == 3 + 1  # a path per input and the chi mode

    travel = explorer.travel("1,2,3", method="nao", frames=3, loop=True, easing="ease-in-out", class_value="class1")
    assert len(json.loads((travel.folder / "run.json").read_text())["frames"]) == 3 * 2  # keyframes not repeated
    assert main(["travel", "--seeds", "1,2,3", "--frames", "3", "--loop", "--easing", "ease-in-out", "--class",
                 "class1", "--model", explorer.ref, "--out", str(tmp_path / "cli"), "--quiet"]) == 0
    ui_run, cli_run = (json.loads((f / "run.json").read_text()) for f in (travel.folder, tmp_path / "cli"))
    assert ui_run["parameters"] == cli_run["parameters"]  # one settings class makes both records
    assert travel.videos["mp4"].stat().st_size > 0 and travel.videos["gif"].stat().st_size > 0
    assert regenerates(travel.folder / "frames" / "frame000004.png", tmp_path)

    norms = explorer.norms(fewshot_pngs[:1], "1,2", class_value="class1")
    summary = json.loads((norms.folder / "norms.json").read_text())
    assert [row[0] for row in norms.table] == ["1", "2", "shot0.png"]
    assert [row[1] for row in norms.table] == [round(r["norm_ratio"], 4) for r in summary["seeds"]]
    assert norms.image == norms.folder / "norms.png" and norms.image.is_file()


@pytest.mark.parametrize("call, message", [
    (lambda ex, bad: ex.interpolate("11", None, upload_b=bad), "endpoint B: broken.png is not a readable image"),
    (lambda ex, bad: ex.interpolate("11", "4x2"), "endpoint B"),
    (lambda ex, bad: ex.interpolate("11", "11,42"), "endpoint B: give one seed integer"),
    (lambda ex, bad: ex.interpolate("11", str(Path(bad).parent)), "upload images and seed files instead"),
    (lambda ex, bad: ex.interpolate("11", "42", class_value="no such class"), "no such class"),
    (lambda ex, bad: ex.interpolate("11", "42", methods=["warp"]), "unknown methods 'warp'"),
    (lambda ex, bad: ex.centroid(None, "5"), "centroid inputs: give 2 to"),
    (lambda ex, bad: ex.norms([bad], None), "seeds: broken.png is not a readable image"),
])
def test_bad_input_is_one_line_value_error_and_writes_nothing(explorer, broken_png, call, message):
    with pytest.raises(ValueError) as info:
        call(explorer, broken_png)
    assert message in str(info.value) and "\n" not in str(info.value)
    runs = explorer.runs_dir
    assert not runs.exists() or not [p for p in runs.iterdir() if p.name != "uploads"]


def test_page_callback_shows_errors_as_one_message():
    pytest.importorskip("gradio")
    from seedspace.ui.app import ERROR_PREFIX, page_callback

    def task(value, progress):
        if value == "bad":
            raise ValueError("endpoint A: 'bad' is not a seed integer")
        if value == "bug":
            raise KeyError("oops")
        progress(1.0, "done")
        return type("Result", (), {"text": f"ok {value}"})()

    callback = page_callback(task, lambda r: [r.text.upper()], 1)
    assert callback("7", progress=lambda *a, **k: None) == ["OK 7", "ok 7"]
    assert callback("bad", progress=lambda *a, **k: None) == [None, ERROR_PREFIX + "endpoint A: 'bad' is not a seed integer"]
    assert callback("bug", progress=lambda *a, **k: None) == [None, ERROR_PREFIX + "internal error: KeyError: 'oops'"]


def test_ui_command_warns_when_bound_beyond_loopback(tiny_testbed_dir, tmp_path, capsys, monkeypatch):
    pytest.importorskip("gradio")
    import seedspace.ui.app

    served = []
    monkeypatch.setattr(seedspace.ui.app, "serve", lambda explorer, host, port: served.append((host, port)))
    assert main(["ui", "--model", str(tiny_testbed_dir), "--host", "0.0.0.0", "--port", "0",
                 "--runs-dir", str(tmp_path)]) == 0
    assert served == [("0.0.0.0", None)] and "warning: serving on 0.0.0.0" in capsys.readouterr().err
    assert main(["ui", "--model", str(tiny_testbed_dir), "--runs-dir", str(tmp_path)]) == 0
    assert served[-1] == ("127.0.0.1", 7860) and "warning" not in capsys.readouterr().err
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    for host in ("::1", "[::1]", ""):  # Gradio's start-up check fails on IPv6 literals after binding
        assert main(["ui", "--model", str(tiny_testbed_dir), "--host", host, "--runs-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--host" in err
    assert len(served) == 2
    with socket.socket() as busy:  # a port in use, or a host that is not this machine: one line before loading
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args, message in ((["--port", str(port)], f"127.0.0.1:{port} (in use)"),
                              (["--host", "no-such-host.invalid"], "cannot serve on no-such-host.invalid:7860")):
            assert main(["ui", "--model", str(tiny_testbed_dir), "--runs-dir", str(tmp_path), *args]) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and message in err, err
    assert len(served) == 2


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ui_ends_on_ctrl_c_and_sigterm_with_their_exit_codes(tiny_testbed_dir, tmp_path, sig, code):
    pytest.importorskip("gradio")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "seedspace", "ui", "--model", str(tiny_testbed_dir), "--port",
                             str(port), "--runs-dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == code
        assert proc.stderr.read().strip().splitlines()[-1] in ("seedspace: interrupted", "seedspace: terminated")
    finally:
        proc.kill()


# -- the page in a real browser ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip("headless Chromium is missing (apt-get install chromium chromium-driver; .ci/run installs it)")
    pytest.importorskip("gradio")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_page_in_headless_chromium(browser, explorer, fewshot_pngs, broken_png, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from seedspace.ui.app import serve

    port = free_port()
    app = serve(explorer, "127.0.0.1", port, block=False)
    try:
        wait = WebDriverWait(browser, 40)
        browser.get(f"http://127.0.0.1:{port}/")
        run_button = wait.until(ec.element_to_be_clickable((By.ID, "interpolate-run")))

        def upload(elem_id: str, path: str) -> None:
            browser.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=file]").send_keys(path)
            wait.until(ec.presence_of_element_located(
                (By.CSS_SELECTOR, f"#{elem_id} td.filename[aria-label='{Path(path).name}']")))

        upload("upload-a", fewshot_pngs[0])
        upload("upload-b", fewshot_pngs[1])
        # slerp, nao and nao@chi are checked at first: nao alone after two clicks, then nao and slerp
        for method in ("slerp", "nao@chi", "slerp"):
            browser.find_element(By.XPATH, f"//*[@id='interpolate-methods']//label[.//span[text()='{method}']]").click()
        run_button.click()
        status = browser.find_element(By.ID, "interpolate-status")
        wait.until(lambda d: "Wrote" in status.text or "Error" in status.text)
        assert "Wrote" in status.text and "reconstruction PSNR" in status.text, status.text
        image = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#interpolate-grid img"))
        wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
        size = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
        folder = next(explorer.runs_dir.glob("interpolate-*[0-9]"))
        assert json.loads((folder / "run.json").read_text())["parameters"]["methods"] == ["nao", "slerp"]
        assert tuple(size) == Image.open(folder / "grid.png").size
        assert browser.save_screenshot(str(tmp_path / "interpolate.png"))
        assert Image.open(tmp_path / "interpolate.png").size[0] > 0

        browser.find_element(By.CSS_SELECTOR, "#upload-a button[aria-label='Clear']").click()
        upload("upload-a", broken_png)
        run_button.click()
        wait.until(lambda d: "Error" in status.text)
        assert "Error: endpoint A: broken.png is not a readable image" in status.text
        assert "Traceback" not in browser.page_source
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:  # still serving
            assert page.status == 200
    finally:
        app.close()
