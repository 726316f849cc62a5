"""End to end in headless Chromium: sign in as an analyst, approve a proposal, see it active,
then see it applied after one enforcement cycle against moto (WAFv2 over HTTP).

Needs Debian's ``/usr/bin/chromium`` (``.ci/run`` installs it); skipped only without it.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn

from api.main import create_app
from engine.compiler import compile_state, config_from_dict, validate_or_raise
from engine.enforcer import Boto3WafV2Api, CallPolicy, Mode, Reconciler
from engine.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WEB_ACL = "prod-acl"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason="Debian's chromium is not installed (.ci/run installs it)",
    ),
]


@pytest.fixture()
def db_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture()
def server_url(service: Service) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 (ephemeral port) in a thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(service, session_secret=b"e2e-secret-e2e-secret-e2e-secret")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def enforcement_cycle(service: Service, endpoint: str, clock) -> list[str]:
    """One cycle as the engine runs it: compile enforceable decisions, converge WAF, mark
    the pushed decisions applied. Returns the addresses now in wafsmith's IP sets."""
    decisions = service.ledger.enforceable()
    config = config_from_dict({"placement": {"web_acl_name": WEB_ACL}})
    state = validate_or_raise(compile_state(decisions, config, clock.now()))
    reconciler = Reconciler(
        Boto3WafV2Api(endpoint_url=endpoint, max_attempts=1),
        clock=clock,
        policy=CallPolicy(clock, seed=1),
    )
    result = reconciler.run_cycle(state, mode=Mode.ENFORCE)
    assert result.ok, result.errors
    service.mark_applied([d.id for d in decisions], by="enforcer")
    return [a for s in state.ip_sets for a in s.addresses]


def test_analyst_approves_and_sees_it_applied(
    server_url, service, tokens, proposed, clock, wafv2, aws_endpoint
) -> None:
    from playwright.sync_api import sync_playwright

    vis = {"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": "a"}
    wafv2.create_web_acl(
        Name=WEB_ACL, Scope="REGIONAL", DefaultAction={"Allow": {}}, VisibilityConfig=vis
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{server_url}/dashboard")
            assert page.url.endswith("/login")  # no session yet
            page.fill("#token", tokens.analyst)
            page.click("button[type=submit]")
            page.wait_for_url(f"{server_url}/dashboard")
            assert "analyst-alice" in page.inner_text("header")

            page.click("text=Queue")
            card = page.locator(f"#d-{proposed.id}")
            assert "203.0.113.7" in card.inner_text()
            card.locator("input[name=comment]").first.fill("confirmed in the logs")
            card.locator("button.approve").click()
            page.wait_for_selector("p.flash.ok")
            assert "approved" in page.inner_text("p.flash.ok")
            assert page.locator(f"#d-{proposed.id}").count() == 0  # left the queue

            page.click("text=Active blocks")
            row = page.locator(f"#a-{proposed.id}")
            assert row.get_attribute("data-status") == "approved"

            addresses = enforcement_cycle(service, aws_endpoint, clock)
            assert addresses == ["203.0.113.7/32"]

            page.reload()
            row = page.locator(f"#a-{proposed.id}")
            assert row.get_attribute("data-status") == "applied"
            assert row.locator("td.status").inner_text() == "applied"
        finally:
            browser.close()

    audit = service.ledger.audit(proposed.id)
    assert [(e.actor, e.to_status) for e in audit[1:]] == [
        ("analyst-alice", "approved"),
        ("enforcer", "applied"),
    ]
    assert audit[1].comment == "confirmed in the logs"


def screenshot(page, folder, name: str) -> None:
    """A full-page PNG in ``folder`` (and in ``$WAFSMITH_SCREENSHOTS`` when set, to keep)."""
    for target in filter(None, [str(folder), os.environ.get("WAFSMITH_SCREENSHOTS")]):
        os.makedirs(target, exist_ok=True)
        path = os.path.join(target, f"{name}.png")
        page.screenshot(path=path, full_page=True)
        with open(path, "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_queue_and_a_decision_read_at_a_glance(
    server_url, service, tokens, analysis, tmp_path
) -> None:
    """Screenshots of the queue and a decision page from a real analyzer run: the blast-radius
    hold on top, fired reasons shown and quiet checks folded, evidence one line per request;
    then an analyst adds a manual ban from the Active page."""
    from playwright.sync_api import sync_playwright

    from api.reasons import split_reasons

    stored = service.ledger.propose_many(analysis.decisions)
    held = next(d for d in stored if d.members)
    service.put_policy(
        {"auto_approve": [{"name": "c", "detectors": [held.detector], "min_score": 0.0}]},
        by="admin-alice",
    )
    quiet = next(d for d in stored if split_reasons(d.reasons)[1] and len(d.evidence) >= 3)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{server_url}/login")
            page.fill("#token", tokens.analyst)
            page.click("button[type=submit]")
            page.wait_for_url(f"{server_url}/dashboard")

            page.goto(f"{server_url}/dashboard/queue")
            first_group = page.locator("h2.group").first
            assert first_group.inner_text().startswith("Held by the blast-radius guard")
            screenshot(page, tmp_path, "queue")

            page.goto(f"{server_url}/dashboard/decisions/{quiet.id}")
            assert page.locator("ul.reasons.fired li").first.is_visible()
            assert not page.locator("ul.reasons.quiet li").first.is_visible()  # folded
            rows = page.locator("table.evidence tr.sample")
            assert rows.count() == len(quiet.evidence)
            height = page.locator("table.evidence").bounding_box()["height"]
            assert height < 60 * (rows.count() + 1), "evidence rows are not compact"
            screenshot(page, tmp_path, "decision")
            page.locator("details.checked summary").click()
            assert page.locator("ul.reasons.quiet li").first.is_visible()

            page.goto(f"{server_url}/dashboard/active")
            form = page.locator("#manual-form")
            form.locator("input[name=client]").fill("192.0.2.77")
            form.locator("select[name=action]").select_option("block")
            form.locator("input[name=reason]").fill("reported by the abuse desk")
            form.locator("button[type=submit]").click()
            page.wait_for_selector("p.flash.ok")
            assert "192.0.2.77" in page.inner_text("p.flash.ok")
            screenshot(page, tmp_path, "active")
        finally:
            browser.close()
    assert any(d.client == "192.0.2.77" for d in service.ledger.enforceable(service.now()))
