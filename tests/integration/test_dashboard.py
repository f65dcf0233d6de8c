"""The dashboard in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium through /usr/bin/chromedriver) against a real
`riffle serve` whose Kafka path is fed by `riffle replay` on a real broker.

It checks that the page shows a card for the model whose charts hold data (throughput,
rolling accuracy, latency, Kafka lag, class distribution, flagged predictions), that the data
changes while the traffic flows, that the numbers drawn are the server's (a chart's last point
is a point of /api/v1/dashboard), that the browser reports no error (a script error, a request
the page's Content-Security-Policy refused), and saves a screenshot:

    RIFFLE_TEST_ARTIFACTS  where the screenshot goes (default: <build dir>/test-artifacts, the
                           build dir being the one of RIFFLE_BIN); its path is printed.

Needs RIFFLE_KAFKA_BOOTSTRAP like test_kafka_service.py (scripts/test_kafka_integration.sh
sets it), whose rig, fixtures and helpers it uses. Every wait polls for its condition with a
generous deadline: the CI machine is small and shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

# The rig of the Kafka tests: topics, `riffle serve` processes, fixtures (bootstrap, riffle_bin,
# rig: imported, so pytest provides them here too).
from test_kafka_service import (Rig, bootstrap, kafka_model, riffle_bin,  # noqa: F401
                                rig, wait_until)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PAGE_TIMEOUT_S = 90.0  # from opening the page to charts with data, on a slow machine
# The traffic: a synthetic stream replayed at a steady rate that lasts longer than the test
# (the replay is killed at its end), so the data keeps changing however slow the machine is.
STREAM_ROWS = 20_000
REPLAY_RATE = 50  # events/s

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            pytest.fail(f"{path} not found: install Debian's {package} (scripts/install_deps.sh)",
                        pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", "--no-first-run", "--window-size=1400,1600"):
        options.add_argument(arg)
    # The console, to check that the page logged no error.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium never looks for (or downloads) a driver or browser.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def artifacts_dir(riffle: Path) -> Path:
    configured = os.environ.get("RIFFLE_TEST_ARTIFACTS")
    # RIFFLE_BIN is <build dir>/service/riffle.
    path = Path(configured) if configured else riffle.parent.parent / "test-artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def chart(driver: webdriver.Chrome, model: str, name: str) -> dict[str, Any]:
    """What a chart of the model's card shows: its data-* attributes, whether it is displayed,
    and the number of points of its first line as drawn (path commands)."""
    return driver.execute_script(
        """
        const fig = document.querySelector(
            `section.card[data-model="${arguments[0]}"] figure[data-chart="${arguments[1]}"]`);
        if (!fig) return null;
        const path = fig.querySelector('path.l0');
        const drawn = path ? (path.getAttribute('d').match(/[ML]/g) || []).length : 0;
        return {state: fig.dataset.state, points: Number(fig.dataset.points || 0),
                last: fig.dataset.last === undefined ? null : Number(fig.dataset.last),
                lastTime: fig.dataset.lastTime === undefined ? null : Number(fig.dataset.lastTime),
                hidden: fig.hidden, drawn};
        """, model, name)


def api(http: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{http}/api/v1/dashboard", timeout=10) as r:
        assert r.headers.get("Content-Type") == "application/json"
        return json.load(r)


def test_dashboard_shows_live_data_in_a_browser(rig: Rig, browser: webdriver.Chrome) -> None:
    model = "agrawal"
    data = rig.tmp / "agrawal.csv"
    with open(data, "wb") as f:
        subprocess.run([str(rig.binary), "gen", "agrawal", "--rows", str(STREAM_ROWS),
                        "--seed", "7"], stdout=f, check=True, timeout=60)
    events, predictions = rig.name("dash"), rig.name("dash.pred")
    flagged = rig.name("dash.flagged")
    rig.create_topics(events, events + ".dlq", predictions, flagged)
    http_ready = rig.tmp / "http-ready"
    server = rig.serve(
        [kafka_model(model, events=events, predictions=predictions, group=rig.name("dash"),
                     routes=[{"topic": flagged, "class": "1", "min_probability": 0.3}],
                     spec={"learner": "hoeffding_adaptive_tree", "metrics_window": 200})],
        name="dash", args=("--http-listen", "127.0.0.1:0", "--http-ready-file", str(http_ready)))
    # Written before the gRPC ready file that serve() waited for.
    http = http_ready.read_text().strip()
    assert http, server.log()

    # The page first, then the traffic: it sees the models idle, then live.
    browser.get(f"http://{http}/")
    assert browser.current_url == f"http://{http}/dashboard/", browser.current_url
    wait_until(lambda: browser.execute_script(
        "return document.querySelector(`section.card[data-model='agrawal']`) !== null"),
        PAGE_TIMEOUT_S, "the model's card", server.log)

    replay = subprocess.Popen(
        [str(rig.binary), "replay", "--data", str(data), "--topic", events,
         "--bootstrap", rig.bootstrap, "--label", "class", "--rate", str(REPLAY_RATE),
         "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Charts with data: accuracy needs scored examples; rates and latencies need traffic
        # within their windows; the lag a sample of the Kafka path. (Not the predict latency,
        # which is of gRPC Predict calls: there are none.)
        def charts_have_data() -> bool:
            for name in ("quality", "log_loss", "throughput", "event_to_prediction", "kafka_lag",
                         "classes"):
                c = chart(browser, model, name)
                if not c or c["state"] != "data" or c["hidden"]:
                    return False
            return True

        wait_until(charts_have_data, PAGE_TIMEOUT_S, "every chart of the card to show data",
                   lambda: json.dumps({n: chart(browser, model, n) for n in (
                       "quality", "throughput", "predict_latency", "event_to_prediction",
                       "kafka_lag", "classes")}, indent=1) + "\n" + server.log())

        # The data changes while the traffic flows: new points are appended every second, the
        # rolling accuracy moves, and the throughput is positive.
        first = chart(browser, model, "throughput")
        accuracies = set()
        most_events = 0.0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            q, t = chart(browser, model, "quality"), chart(browser, model, "throughput")
            accuracies.add(q["last"])
            most_events = max(most_events, t["last"] or 0.0)
            if (t["points"] >= first["points"] + 3 and t["lastTime"] >= first["lastTime"] + 3
                    and len(accuracies) >= 2 and most_events > 0):
                break
            time.sleep(0.25)
        now = chart(browser, model, "throughput")
        assert now["points"] >= first["points"] + 3, (first, now)
        assert now["lastTime"] >= first["lastTime"] + 3, (first, now)
        assert len(accuracies) >= 2, f"the rolling accuracy never changed: {accuracies}"
        assert most_events > 0, "the throughput chart never showed events"
        assert now["drawn"] >= 2, f"the throughput line has {now['drawn']} drawn points"

        # What the page draws is the server's data: the quality chart's last point is the
        # rolling accuracy the API has at that time.
        q = chart(browser, model, "quality")
        served = {t: v for t, v in next(m for m in api(http)["models"]
                                        if m["name"] == model)["series"]["accuracy"]}
        assert q["lastTime"] in served, (q, sorted(served)[-5:])
        assert served[q["lastTime"]] == q["last"], (q, served[q["lastTime"]])
        assert 0 <= q["last"] <= 1

        # Flagged predictions (P(bad) >= 0.3) are listed.
        wait_until(lambda: int(browser.execute_script(
            "return document.querySelector(`section.card[data-model='agrawal'] table.flagged`)"
            ".dataset.rows")) > 0, PAGE_TIMEOUT_S, "flagged predictions in the table", server.log)
        rows = browser.execute_script(
            "return [...document.querySelectorAll("
            "`section.card[data-model='agrawal'] table.flagged tr`)].map(r => r.innerText)")
        assert len(rows) >= 2 and all(flagged in r for r in rows[1:]), rows
        # No gRPC Predict call was made: its latency chart says so instead of drawing zeros.
        assert chart(browser, model, "predict_latency")["state"] == "empty"

        # The headline numbers are numbers, and the page says it is live.
        headline = browser.execute_script(
            "const card = document.querySelector(`section.card[data-model='agrawal']`);"
            "const out = {};"
            "for (const s of card.querySelectorAll('.stat')) if (!s.hidden)"
            "  out[s.dataset.stat] = s.querySelector('.value').textContent;"
            "return out;")
        for stat in ("accuracy", "log_loss", "roc_auc", "events_per_second", "kafka_lag"):
            assert headline.get(stat, "–") != "–", headline
        assert browser.execute_script(
            "return document.getElementById('status').dataset.state") == "live"

        # No script error, no request refused by the Content-Security-Policy.
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors

        path = artifacts_dir(rig.binary) / "dashboard.png"
        browser.set_window_size(1400, max(1000, browser.execute_script(
            "return document.documentElement.scrollHeight")))
        assert browser.save_screenshot(str(path)), path
        assert path.stat().st_size > 10_000, path.stat().st_size
        print(f"dashboard screenshot: {path}")
    finally:
        if replay.poll() is None:
            replay.kill()
        out, _ = replay.communicate(timeout=30)
    assert replay.returncode in (0, -9), f"riffle replay failed:\n{out}"
    assert server.stop() == 0, server.log()


def test_dashboard_without_kafka_degrades_gracefully(rig: Rig, browser: webdriver.Chrome) -> None:
    """A model served over gRPC only: no Kafka charts, a note saying so, gRPC traffic drawn."""
    model = "grpc_only"
    http_ready = rig.tmp / "http-ready-grpc"
    server = rig.serve([{"name": model, "spec": {"learner": "logreg"}}], name="grpc",
                       args=("--http-listen", "127.0.0.1:0", "--http-ready-file",
                             str(http_ready)))
    http = http_ready.read_text().strip()
    browser.get(f"http://{http}/dashboard/")
    c = server.client()
    deadline = time.monotonic() + PAGE_TIMEOUT_S

    def throughput_shows_predictions() -> bool:
        # gRPC traffic until the chart shows it: a prediction and a learn each poll.
        c.learn(model, {"x": 1.0}, "1")
        c.predict(model, {"x": 2.0})
        t = chart(browser, model, "throughput")
        return bool(t) and t["state"] == "data" and (t["last"] or 0) > 0

    while not throughput_shows_predictions():
        assert time.monotonic() < deadline, f"no throughput drawn:\n{server.log()}"
        time.sleep(0.2)
    for name in ("kafka_lag", "event_to_prediction"):
        assert chart(browser, model, name)["hidden"], name
    assert browser.execute_script(
        "return !document.querySelector(`section.card[data-model='grpc_only'] .kafka-note`)"
        ".hidden")
    assert browser.execute_script(
        "return document.querySelector(`section.card[data-model='grpc_only'] table.flagged`)"
        ".hidden")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    assert server.stop() == 0, server.log()
