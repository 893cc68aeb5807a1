"""The caller answers the survey after a real call, by keyboard alone from the link
through a statement signed by the typed name; a supervisor sees it in the report.

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
from tests.support.browser import admit_first_waiting, new_link, signed_in_handler
from tests.support.keyboard import choose, tab_to

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_a_keyboard_only_caller_signs_by_typing_answers_the_survey_and_the_supervisor_sees_it(
    handler: Page, phone: BrowserContext, appliance: Appliance, browser: Browser
) -> None:
    """The caller never touches a mouse: from the link, Tab, Space, Enter and arrows
    through consent, the camera check, the statement signed by the typed name (WCAG
    2.5.7) and the survey, each stop showing its focus and nothing trapping it."""
    context = browser.new_context(ignore_https_errors=True, locale="en-GB")
    context.set_default_timeout(15_000)
    supervisor = signed_in_handler(context, appliance, "sup1", role="supervisor")
    # The first evaluation page imports the statistics and charts (numpy, scipy,
    # statsmodels, matplotlib): 5 s on an idle box, over 15 s under the suite's load.
    supervisor.goto(appliance.base_url + "/evaluation", timeout=60_000)
    expect(supervisor.get_by_role("heading", name="Evaluation")).to_be_visible()
    expect(supervisor.locator("#no-cases")).to_be_visible()

    link = new_link(handler, appliance, "CAD/E2E/SURVEY")
    caller = phone.new_page()
    caller.goto(link)
    expect(caller).to_have_title("Video call")
    choose(caller, caller.get_by_label("Yes, I agree to a video call with the police"))
    tab_to(caller, caller.get_by_role("button", name="Continue"))
    caller.keyboard.press("Enter")
    join = caller.get_by_role("button", name="Join video call")
    expect(join).to_be_enabled()
    tab_to(caller, join)
    caller.keyboard.press("Enter")
    expect(caller.get_by_text("The officer will join you shortly")).to_be_visible()
    admit_first_waiting(handler, appliance, "CAD/E2E/SURVEY")
    expect(caller.get_by_role("button", name="End call")).to_be_visible()

    handler.get_by_role("tab", name="Statement").click()
    handler.get_by_label("Account, in the witness's words").fill("I saw the van at 21:40.")
    handler.get_by_role("button", name="Send to the caller to sign").click()
    read = caller.get_by_role("button", name="Read statement")
    expect(read).to_be_visible()
    tab_to(caller, read)
    caller.keyboard.press("Enter")
    expect(caller.locator("#st-account")).to_contain_text("I saw the van")
    tab_to(caller, caller.get_by_label("Type your full name"))
    caller.keyboard.type("Jane Marple")
    choose(caller, caller.get_by_label("Sign by my typed name, without drawing"))
    expect(caller.locator("#signature-pad")).to_be_hidden()
    tab_to(caller, caller.get_by_label("I confirm that typing my full name"))
    caller.keyboard.press("Space")
    tab_to(caller, caller.get_by_role("button", name="Sign statement"))
    caller.keyboard.press("Enter")
    expect(caller.locator("#statement-status")).to_contain_text(
        "You signed this statement as Jane Marple by typing your name", timeout=20_000
    )
    assert_accessible(caller, "the statement signed by the typed name")
    expect(handler.locator("#statement-state")).to_contain_text("(typed name, confirmed)")

    handler.get_by_role("button", name="End call").click()
    expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()
    assert_accessible(caller, "ended by the officer, the survey offered")

    tab_to(caller, caller.get_by_role("link", name=re.compile("Tell us how we did")))
    caller.keyboard.press("Enter")
    expect(caller).to_have_title("Feedback")
    assert_accessible(caller, "survey")
    tab_to(caller, caller.get_by_role("button", name="Send answers"))
    caller.keyboard.press("Enter")  # nothing chosen yet
    expect(caller.locator(".error-summary")).to_contain_text("choose an answer from 1 to 5")
    assert_accessible(caller, "survey with its error summary")
    choose(caller, caller.get_by_label("Very positive"))
    choose(caller, caller.get_by_label("Satisfied", exact=True))
    choose(caller, caller.get_by_label("Yes"))
    tab_to(caller, caller.get_by_label(re.compile("Anything else")))
    caller.keyboard.type("The officer was patient")
    tab_to(caller, caller.get_by_role("button", name="Send answers"))
    caller.keyboard.press("Enter")
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
