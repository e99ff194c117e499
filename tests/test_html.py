"""The study as one web page, opened in a real browser (Debian's chromium, driven by Playwright):
it loads from file:// with no console error and no request leaving the machine, draws every figure,
a hover on a map shows the numbers the Python API gives for that cell, and a screenshot of it is
not blank. The README's picture (docs/report.png) is this test's screenshot."""

import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

import psa
from helpers import need, subset
from psa.cli import main
from psa.study.html import page_data, render, write_report
from psa.study.study import Study
from psa.sweeps.settings import Machine, RunSettings
from psa.sweeps.sweep import run_grid
from psa.trial.architecture import Architecture
from psa.trial.modes import MODES

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ZEROR = 11.02
README_SHOT = Path(__file__).parents[1] / "docs" / "report.png"


@pytest.fixture(scope="module")
def browser():
    need(Path(CHROMIUM).is_file(), "chromium is not installed (Debian: chromium); .ci/run installs it")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        # No first-run, sync or component downloads: the closed network would refuse them (and a
        # test must see every request the page itself makes).
        args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
        args += ["--disable-component-update", "--disable-sync", "--disable-quic"]
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=args)
        yield launched
        launched.close()


def open_page(browser, path: Path):
    """The page at `path`, loaded and drawn; the console's errors and every request it made."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, requests = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    started = time.perf_counter()
    page.goto(path.resolve().as_uri())
    page.wait_for_function("window.psaReady === true", timeout=60_000)
    return page, errors, requests, time.perf_counter() - started


def hover_numbers(page, figure: str, arch: str) -> str:
    """Move the mouse onto `arch`'s point of a map, as a reader would, and read the hover label."""
    page.locator(f"#{figure}").scroll_into_view_if_needed()
    x, y = page.evaluate(
        """([id, arch]) => {
            const div = document.getElementById(id);
            const figure = DATA.figures.find((f) => f.id === id);
            const k = figure.points.indexOf(arch);
            const layout = div._fullLayout, trace = figure.data[0];
            const box = div.querySelector(".nsewdrag").getBoundingClientRect();
            const x = layout.xaxis.l2p(Math.log10(trace.x[k])), y = layout.yaxis.l2p(Math.log10(trace.y[k]));
            return [box.left + x, box.top + y];
        }""",
        [figure, arch],
    )
    page.mouse.move(x, y)
    page.wait_for_selector(f"#{figure} .hoverlayer .hovertext", timeout=5_000)
    return page.locator(f"#{figure} .hoverlayer .hovertext").text_content()


@pytest.fixture(scope="module")
def own_study(tmp_path_factory, mnist) -> Path:
    """A small study of own architectures, one ResMLP, in three modes; its report."""
    folder = tmp_path_factory.mktemp("own")
    data = subset(mnist, train=600, val=300)
    for family, archs in (("simplemlp", ("1*32", "2*16", "4*8")), ("resmlp", ("[1*8, 2*8]",))):
        run = RunSettings(tuple(map(Architecture.parse, archs)), ("none", "full", "hidden"), 3, 4, family=family)
        run_grid(run, folder / f"{family}.sqlite", Machine(device="cpu", threads=1), data=data, wait=False)
    return folder


def test_the_published_study_opens_offline_draws_every_figure_and_hovers_the_apis_numbers(browser, tmp_path):
    study = psa.open_study("published")
    report = write_report(study, tmp_path, ZEROR)
    page, errors, requests, seconds = open_page(browser, report)
    assert errors == [] and {url.split(":")[0] for url in requests} <= {"file", "data", "blob"}, requests
    assert page.locator(".js-plotly-plot").count() == 6 + 2 + 1  # a map per mode, regimes, design space, curves
    summary = study.summary().set_index(["arch", "mode"])
    for mode, arch in (("none", "4*47"), ("output", "1*2048")):
        text = hover_numbers(page, f"map-{mode}", arch)
        cell = summary.loc[(arch, mode)]
        assert f"{arch}" in text and f"mean {cell['mean']:.2f}%" in text and f"std {cell['std']:.2f}%" in text
        assert f"n {cell['n']}" in text
    page.select_option("#arch", "18*18")
    assert page.locator("#curves .scatterlayer .trace").count() >= 6  # a study row per mode and the ZeroR line
    size = report.stat().st_size
    print(f"published report: {size / 1e6:.1f} MB, drawn in {seconds:.1f} s")  # the README's figures
    assert size < 15e6
    page.set_viewport_size({"width": 1280, "height": 1500})
    page.evaluate("window.scrollTo(0, 0)")
    page.mouse.move(1, 1)  # no hover label, no tool bar
    page.screenshot(path=str(tmp_path / "report.png"))
    assert not_blank(tmp_path / "report.png")
    if os.environ.get("PSA_UPDATE_SCREENSHOT"):  # the README's picture: PSA_UPDATE_SCREENSHOT=1 pytest -k published
        shutil.copyfile(tmp_path / "report.png", README_SHOT)


def not_blank(png: Path) -> bool:
    """A screenshot with content: many distinct colours, not one background."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    return len(colours) > 200 and max(count for count, _ in colours) < 0.95 * image.width * image.height


@pytest.mark.slow
def test_an_own_study_with_resmlp_against_the_published_one(browser, own_study, capsys):
    main(["report", "--html", "--store", str(own_study / "simplemlp.sqlite"), "--out", str(own_study / "s")])
    main(
        [
            "report",
            "--html",
            "--store",
            str(own_study / "resmlp.sqlite"),
            "--model",
            "resmlp",
            "--out",
            str(own_study / "r"),
        ]
    )
    for folder, archs in (("s", ["1*32", "2*16", "4*8"]), ("r", ["1*8,2*8"])):
        page, errors, _, _ = open_page(browser, own_study / folder / "report.html")
        assert errors == []
        assert page.locator(".js-plotly-plot").count() == 3 + 2 + 1  # the three modes run
        assert page.eval_on_selector_all("#arch option", "options => options.map((o) => o.value)") == archs
        text = hover_numbers(page, "map-hidden", archs[-1])
        cell = psa.open_study(own_study / f"{'simplemlp' if folder == 's' else 'resmlp'}.sqlite").summary()
        cell = cell[(cell["arch"] == archs[-1]) & (cell["mode"] == "hidden")].iloc[0]
        assert f"mean {cell['mean']:.2f}%" in text
    main(["report", "--html", "--store", str(own_study / "simplemlp.sqlite"), "--against", "published",
          "--out", str(own_study / "against")])  # fmt: skip
    page, errors, _, _ = open_page(browser, own_study / "against" / "report.html")
    assert errors == [] and page.locator("#comparison").is_visible()
    assert "not compared" in page.locator("#comparison-regimes").inner_text()  # three modes: no regime
    assert "reference:" in hover_numbers(page, "map-none", "1*32")


@pytest.mark.slow
def test_a_full_grid_study_stays_under_15_megabytes(mnist_dir):
    """98 architectures x 6 modes x 10 trials x 100 loops of current and LKG accuracies."""
    published = psa.open_study("published")
    trials = published.trials.copy()
    trials["test_accuracy"] = trials["bounty"]
    rows = []
    for trial_id, trial in trials.iterrows():
        for loop in range(1, 101):
            value = trial["bounty"] * (0.9 + 0.1 * loop / 100)
            rows.append({"trial_id": trial_id, "arch": trial["arch"], "mode": trial["mode"], "trial": trial["trial"]})
            rows[-1] |= {"loop": loop, "score": value, "lkg": value, "bounty": value, "improved": True}
    loops = pd.DataFrame(rows).astype({"trial_id": "Int64", "loop": "Int64", "trial": "Int64"})
    study = Study(trials, loops, [], "a full grid")
    assert (
        len(study.complete) > 5000 and len(study.loops) == 100 * len(study.complete) and set(study.modes) == set(MODES)
    )
    size = len(render(page_data(study, ZEROR, data_dir=mnist_dir, bootstrap=10)).encode())
    print(f"full-grid report: {size / 1e6:.1f} MB")
    assert size < 15e6


def test_reproduce_writes_the_report(tmp_path, mnist, monkeypatch):
    monkeypatch.setattr("psa.sweeps.sweep.load_mnist", lambda data_dir=None: subset(mnist, train=300, val=200))
    main(
        [
            "reproduce",
            "--arch",
            "1*8,2*4",
            "--trials",
            "2",
            "--meta-loops",
            "2",
            "--lr",
            "0.002",
            "--out",
            str(tmp_path),
        ]
    )
    text = (tmp_path / "report.html").read_text()
    data = json.loads(text.split('<script type="application/json" id="psa-data">')[1].split("</script>")[0])
    assert data["counts"] == {"trials": 2 * 6 * 2, "archs": 2, "modes": list(MODES)}
    assert sorted(data["curves"]) == ["1*8", "2*4"]
    assert "report.html" in json.loads((tmp_path / "manifest.json").read_text())["files"]
