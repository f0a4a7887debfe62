"""The review loop end to end, as a product owner uses it: `aigq review` over the serving log of a
running BentoML server; in headless Chromium the reviewer flags a served suggestion, and the
server stops suggesting it within seconds, without a restart. Bad input gets a 4xx naming the
field; everything the page shows is escaped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from monitoring.screenshot import Browser, find_chromium, not_blank
from servers.launch import spawn, stop_spawned
from serving.log import read_log

from tests.integration.servers import free_port, known_users, post

DOCS = Path(__file__).parents[2] / "docs"


@pytest.fixture(scope="module")
def review_home(served_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("review") / "home"
    shutil.copytree(served_home["home"], home)
    return home


@pytest.fixture(scope="module")
def bento_for_review(review_home):
    proc = spawn("bento", port := free_port(), review_home)
    yield f"http://127.0.0.1:{port}"
    stop_spawned(proc)


@pytest.fixture(scope="module")
def review_app(review_home):
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("aigq")), "review", "--set", f"port={port}"],
        env={**os.environ, "AIGQ_HOME": str(review_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/api/flags", timeout=2)
            break
        except OSError:
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def served(review_home, bento_url: str, user: str, k: int = 8) -> dict:
    status, answer = post(f"{bento_url}/recommend", {"user_id": user, "k": k})
    assert status == 200, answer
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the log is written off the request path
        log = read_log(f"sqlite:///{review_home / 'serving' / 'log.db'}")
        if answer["request_id"] in set(log["request_id"]):
            return answer
        time.sleep(0.2)
    raise AssertionError("the answer never reached the serving log")


def require_chromium() -> None:
    if find_chromium() is None:
        if os.environ.get("AIGQ_REQUIRE_SERVICES"):
            pytest.fail("chromium is not installed (AIGQ_REQUIRE_SERVICES is set): apt-get install chromium")
        pytest.skip("chromium is not installed")


def test_a_flag_in_the_browser_stops_the_query_being_served(review_home, bento_for_review, review_app):
    require_chromium()
    user = known_users(review_home, 3)[1]
    answer = served(review_home, bento_for_review, user)
    target = answer["suggestions"][0]["query"]
    request_id = answer["request_id"]
    with Browser(width=1300, height=1500) as browser:
        assert browser.navigate(f"{review_app}/?reviewer=ann", f"!!document.getElementById('list-{request_id}')")
        filled = browser.evaluate(
            f"""(() => {{
              const form = document.querySelector('#list-{request_id} form.flag-form');
              form.querySelector('[name=reason]').value = 'irrelevant';
              form.querySelector('[name=evidence]').value = '<b>not what this shopper wants</b>';
              form.submit();
              return form.querySelector('[name=position]').value;
            }})()"""
        )
        assert filled == "0"
        flagged_js = f"!!document.querySelector('#list-{request_id} td.flagged')"
        assert browser.wait_for(flagged_js, timeout=20), "the page does not show the flag"
        cell = browser.evaluate(f"document.querySelector('#list-{request_id} td.flagged').textContent")
        assert cell == target
        row_html = browser.evaluate(f"document.querySelector('#list-{request_id}').innerHTML")
        assert "&lt;b&gt;not what this shopper wants&lt;/b&gt;" in row_html  # evidence shown, escaped
        flagged_at = time.monotonic()
        browser.evaluate("window.scrollTo(0, 0)")
        shot = browser.capture(review_home / "review_page.png")
    if os.environ.get("AIGQ_UPDATE_DOCS"):
        shutil.copy(shot, DOCS / "review_page.png")
    assert not_blank(shot) > 0.02
    while time.monotonic() - flagged_at < 15:
        status, again = post(f"{bento_for_review}/recommend", {"user_id": user, "k": 8})
        if target not in [s["query"] for s in again["suggestions"]]:
            break
        time.sleep(0.5)
    seconds = time.monotonic() - flagged_at
    print(f"flagged {target!r}: gone from the served list after {seconds:.1f}s")
    assert target not in [s["query"] for s in again["suggestions"]] and len(again["suggestions"]) == 8
    assert seconds < 10


def test_hostile_text_from_the_log_is_escaped_on_the_page(review_home, bento_for_review, review_app):
    served(review_home, bento_for_review, "<script>alert('x')</script>", k=3)
    with urllib.request.urlopen(f"{review_app}/?reviewer=%3Cimg%20src%3Dx%3E", timeout=30) as r:
        page = r.read().decode()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "<img src=x>" not in page and "&lt;img src=x&gt;" in page


@pytest.mark.parametrize(
    "body, status, needle",
    [
        ({"request_id": "no-such-list", "position": 0, "reason": "irrelevant", "reviewer": "ann"}, 404, "request_id"),
        ({"position": 0, "reason": "irrelevant", "reviewer": "ann"}, 400, "request_id: required"),
        ({"request_id": None, "position": "first", "reason": "irrelevant", "reviewer": "ann"}, 400, "position"),
        ({"request_id": None, "position": 99, "reason": "irrelevant", "reviewer": "ann"}, 400, "position: 0.."),
        ({"request_id": None, "position": 0, "reason": "meh", "reviewer": "ann"}, 400, "reason: one of"),
        ({"request_id": None, "position": 0, "reason": "irrelevant", "reviewer": ""}, 400, "reviewer: required"),
        (
            {"request_id": None, "position": 0, "reason": "offensive", "reviewer": "a", "evidence": "e" * 3000},
            400,
            "evidence",
        ),
        (
            {"request_id": None, "position": 0, "reason": "offensive", "reviewer": "a", "evidence": "e" * 20000},
            400,
            "body",
        ),
    ],
)
def test_bad_decisions_get_a_4xx_naming_the_field(review_home, bento_for_review, review_app, body, status, needle):
    before = len(urllib.request.urlopen(f"{review_app}/api/flags", timeout=10).read())
    if body.get("request_id", "") is None:
        body = {**body, "request_id": served(review_home, bento_for_review, "u-bad-input", k=3)["request_id"]}
    got, answer = post(f"{review_app}/flag", body)
    assert got == status and needle in answer["error"], (got, answer)
    assert len(urllib.request.urlopen(f"{review_app}/api/flags", timeout=10).read()) == before  # nothing written


def test_a_form_flag_redirects_back_and_an_approval_is_recorded(review_home, bento_for_review, review_app):
    answer = served(review_home, bento_for_review, "u-approver", k=2)
    status, body = post(f"{review_app}/approve", {"request_id": answer["request_id"], "reviewer": "bob"})
    assert status == 201 and body["approval_id"] >= 1
    form = (
        f"request_id={answer['request_id']}&position=1&reason=duplicate&scope=global&reviewer=bob"
        "&back=/%3Freviewer%3Dbob"
    )
    req = urllib.request.Request(f"{review_app}/flag", data=form.encode(), method="POST")
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(req, timeout=10)
    assert e.value.code == 303 and e.value.headers["location"] == "/?reviewer=bob"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
