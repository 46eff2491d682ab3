"""tarn's pages in headless Chromium: signing in, the shell, the static
files, and the MLflow client's hash links forwarded to tarn's pages."""

import pytest
import requests

from conftest import own_server


@pytest.fixture(scope="module")
def locked():
    """A tarn that serves no one anonymously, as off loopback."""
    yield from own_server("tarn-ui-locked-", {"TARN_MLFLOW_ANONYMOUS": "false"})


@pytest.fixture
def locked_browser(locked):
    from browser import Browser, available

    if not available():
        pytest.skip("chromium and chromedriver are not installed (scripts/lib.sh installs them)")
    window = Browser(locked.url)
    yield window
    window.quit()


def test_anonymous_on_loopback_sees_the_shell(browser):
    browser.open("/")
    browser.wait("nav.sidenav")
    links = [a.text for a in browser.all("nav.sidenav a")]
    assert links[:4] == ["Home", "Compute", "Workflows", "Pipelines"]
    assert "Costs" in links and "Catalog" in links
    assert browser.one("nav.sidenav a.active").text == "Home"
    # No sign-out for an anonymous viewer.
    assert browser.all("form.signout") == []
    browser.shot("home-anonymous")


def test_sign_in_with_a_token_sets_an_http_only_cookie(locked, locked_browser):
    b = locked_browser
    b.open("/?from=test")
    b.wait("form.signin")
    assert b.path.startswith("/login?next=%2F%3Ffrom%3Dtest")
    b.shot("sign-in")
    b.one("#token").send_keys("dapi-not-a-token")
    b.one("form.signin button").click()
    b.wait_text("not valid")
    b.one("#token").send_keys(locked.token)
    b.one("form.signin button").click()
    b.wait("nav.sidenav")
    assert b.path == "/?from=test"
    cookie = b.driver.get_cookie("tarn_token")
    assert cookie["httpOnly"] is True and cookie["value"] == locked.token
    # Scripts cannot read it.
    assert "tarn_token" not in b.script("return document.cookie")
    b.open("/")
    b.wait("form.signout")
    b.one("form.signout button").click()
    b.wait("form.signin")
    assert b.driver.get_cookie("tarn_token") is None


def test_bearer_header_works_and_no_token_is_sent_to_sign_in(locked):
    anonymous = requests.get(locked.url + "/", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=%2F"
    bearer = requests.get(locked.url + "/", headers={"Authorization": f"Bearer {locked.token}"}, timeout=10)
    assert bearer.status_code == 200 and "nav" in bearer.text
    # htmx requests are told where to go instead of following a redirect.
    htmx = requests.get(locked.url + "/", headers={"HX-Request": "true"}, allow_redirects=False, timeout=10)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login")
    # The sign-in form never forwards off the server.
    r = requests.post(locked.url + "/login", data={"token": locked.token, "next": "//evil.example/"},
                      allow_redirects=False, timeout=10)
    assert r.headers["location"] == "/"


def test_static_files_are_cached_for_good(tarn):
    page = requests.get(tarn.url + "/", timeout=10).text
    src = page.split('src="', 1)[1].split('"', 1)[0]
    assert src.startswith("/static/") and src.endswith("/htmx.min.js")
    r = requests.get(tarn.url + src, timeout=10)
    assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
    assert r.headers["content-type"].startswith("text/javascript")
    stale = requests.get(tarn.url + "/static/0000000000000000/htmx.min.js", timeout=10)
    assert stale.headers["cache-control"] == "no-cache"


def test_the_api_still_answers_json_for_unknown_paths(tarn):
    r = tarn.raw("GET", "/api/2.0/nope")
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_mlflow_hash_links_are_forwarded(browser):
    browser.open("/#/experiments/7/runs/abc123")
    browser.wait_until(lambda: browser.path == "/ml/experiments/7/runs/abc123")
    browser.open("/#/models/churn/versions/2")
    browser.wait_until(lambda: browser.path == "/ml/models/churn/versions/2")
