"""The caller answers the survey after a real call; a supervisor sees it in the report.

The report page's screenshot is kept under test-artifacts/ at the repository root
(git ignores it) for a person to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.appliance import Appliance
from tests.support.axe import assert_accessible
from tests.support.browser import admit_first_waiting, caller_joins, new_link, signed_in_handler

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_the_caller_answers_after_the_call_and_the_supervisor_sees_it(
    handler: Page, phone: BrowserContext, appliance: Appliance, browser: Browser
) -> None:
    context = browser.new_context(ignore_https_errors=True, locale="en-GB")
    context.set_default_timeout(15_000)
    supervisor = signed_in_handler(context, appliance, "sup1", role="supervisor")
    supervisor.goto(appliance.base_url + "/evaluation")
    expect(supervisor.get_by_role("heading", name="Evaluation")).to_be_visible()
    expect(supervisor.locator("#no-cases")).to_be_visible()

    link = new_link(handler, appliance, "CAD/E2E/SURVEY")
    caller = caller_joins(phone, link, recording=False)
    admit_first_waiting(handler, appliance, "CAD/E2E/SURVEY")
    expect(caller.get_by_role("button", name="End call")).to_be_visible()
    handler.get_by_role("button", name="End call").click()
    expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()
    assert_accessible(caller, "ended by the officer, the survey offered")

    caller.get_by_role("link", name=re.compile("Tell us how we did")).click()
    expect(caller).to_have_title("Feedback")
    assert_accessible(caller, "survey")
    caller.get_by_role("button", name="Send answers").click()  # nothing chosen yet
    expect(caller.locator(".error-summary")).to_contain_text("choose an answer from 1 to 5")
    assert_accessible(caller, "survey with its error summary")
    caller.get_by_label("Very positive").check()
    caller.get_by_label("Satisfied", exact=True).check()
    caller.get_by_label("Yes").check()
    caller.get_by_label(re.compile("Anything else")).fill("The officer was patient")
    caller.get_by_role("button", name="Send answers").click()
    expect(caller.locator("#survey-done")).to_have_text("Thank you")
    assert_accessible(caller, "survey answered")

    supervisor.reload()
    positive = supervisor.locator(
        '#measures-outside tr[data-measure="positive"] td[data-cohort="service"]'
    )
    expect(positive).to_contain_text("100.0%")
    expect(positive).to_contain_text("1/1")
    use_again = supervisor.locator(
        '#measures-outside tr[data-measure="use_again"] td[data-cohort="service"]'
    )
    expect(use_again).to_contain_text("1/1")
    expect(supervisor.locator("main")).to_contain_text("Survey comments received: 1")
    expect(supervisor.locator("main")).not_to_contain_text("The officer was patient")
    expect(supervisor.locator("main")).not_to_contain_text("Jane Marple")
    for chart in supervisor.locator("img.chart").all():
        assert chart.evaluate("img => img.decode().then(() => img.naturalWidth)") > 100
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "evaluation-report.png"
    supervisor.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    supervisor.context.close()
