"""Shared fixtures (helpers the tests call by name: tests/helpers.py)."""

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers import CHROMEDRIVER, CHROMIUM, SHARED_DATA, write_csv

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Hypothesis profiles. "ci" is derandomized (the same examples on every run, so a
# red build is reproducible and a green one is not luck), with no example
# database and no deadline (shared CI machines are slow and uneven). "dev" keeps
# Hypothesis' random search, which finds new examples from run to run. CI (set
# by CI services) selects "ci"; HYPOTHESIS_PROFILE names one explicitly. A
# test's own @settings (e.g. its max_examples) still wins over the profile.
settings.register_profile("ci", derandomize=True, max_examples=100, deadline=None,
                          database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                      or ("ci" if os.environ.get("CI") else "dev"))



def pytest_collection_modifyitems(config, items):
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"real data folder {SHARED_DATA} not found "
                                   "(present in CI and on developer machines)")
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared_data():
    return SHARED_DATA


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium that reaches 127.0.0.1 only: a page must not need the network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(120)
    yield driver
    driver.quit()


@pytest.fixture
def small_csv(tmp_path):
    rows = [(f"good great film {i}", "positive") for i in range(30)]
    rows += [(f"bad awful plot {i}", "negative") for i in range(30)]
    rows += [(f"an ordinary day {i}", "neutral") for i in range(30)]
    return write_csv(tmp_path / "train.csv", rows)
