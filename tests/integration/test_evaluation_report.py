"""The evaluation report on a trial dataset with a known effect, made here.

The report must recover the effect sizes the data was drawn with (within tolerance),
and its figures must equal the same figures computed here another way: scipy's
binomial test for the Wilson intervals (the report uses statsmodels), the risk
ratio's log-scale interval by its formula, Welch's interval from scipy's t-test. It
must never carry a name, a phone number, a CAD reference, an address, the incident's
summary or a survey comment, and `evr report` must write the same thing to files.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import matplotlib.colors
import matplotlib.dates
import numpy as np
import pytest
from matplotlib.transforms import Bbox
from scipy import stats
from sqlmodel import Session, select

from appliance import cli
from appliance.cli import governance
from appliance.config import Settings, load_settings
from appliance.db import Database
from appliance.models import (
    Call,
    Incident,
    Invite,
    OutboundMessage,
    Role,
    SurveyResponse,
    Trial,
    TrialAllocation,
    User,
    utcnow,
)
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.calls.invites import Consent
from appliance.services.evaluation import measures, report, survey, trial
from appliance.services.intake import incidents
from tests.support.cli import run_evr
from tests.support.staff import add_incident, add_user

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
N_ARM = 160
N_SERVICE = 40
N_UNTIMED = 3  # per arm: allocated, but no call connected / no visit recorded
P_POSITIVE = {"video": 0.80, "usual": 0.35, "service": 0.75}
P_SATISFIED = {"video": 0.67, "usual": 0.27, "service": 0.6}  # Dorset's first-call figures
P_ANSWER = 0.7
VIDEO_HOURS_MEAN = 3.0  # exponential
USUAL_LOG_MU, USUAL_LOG_SIGMA = math.log(400.0), 0.5  # lognormal: median 17 days (seed: 19)
NAME, PHONE = "Zebedee Quartermaine", "+447700900777"
COMMENT = "Ophelia Frobisher at 12 Acacia Avenue was very kind"
SUMMARY = "Bike stolen from the shed at 99 Laburnum Grove"

# What gathers the figures from the database runs on both engines (the tests without this
# mark); the files, charts and sentences drawn from those figures are the same on either.
DRAWN_ONCE = pytest.mark.sqlite_only(reason="drawn from figures already gathered; no query")


@dataclass
class Truth:
    hours: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in P_POSITIVE})
    answers: dict[str, list[tuple[int, int, bool]]] = field(
        default_factory=lambda: {k: [] for k in P_POSITIVE}
    )
    deployed: dict[str, list[bool]] = field(default_factory=lambda: {k: [] for k in P_POSITIVE})
    weeks: Counter = field(default_factory=Counter)


def _rating(rng: np.random.Generator, good: bool) -> int:
    return int(rng.choice([4, 5])) if good else int(rng.choice([1, 2, 3]))


def _video_call(
    session: Session, incident: Incident, user: User, key: str, connected: datetime
) -> None:
    """A video call that connected at ``connected`` and has ended."""
    invite = Invite(
        incident_id=incident.id,
        token_hash=hashlib.sha256(key.encode()).hexdigest(),
        created_by_id=user.id,
        expires_at=connected + timedelta(days=1),
    )
    session.add(invite)
    session.flush()
    session.add(
        Call(
            public_id=key,
            incident_id=incident.id,
            invite_id=invite.id,
            state="ended",
            connected_at=connected,
            ended_at=connected + timedelta(minutes=20),
        )
    )


def build(session: Session, seed: int = 11) -> Truth:
    """Incidents, trial allocations, calls and survey answers with known rates."""
    rng = np.random.default_rng(seed)
    user = add_user(session, "sup1", Role.SUPERVISOR, Role.HANDLER)
    session.flush()
    trial = Trial(seed=1, block_sizes=[4], started_by_id=user.id, started_at=START)
    session.add(trial)
    session.flush()
    truth = Truth()
    plan = ["video"] * N_ARM + ["usual"] * N_ARM + ["service"] * N_SERVICE
    for i, cohort in enumerate(plan):
        received = START + timedelta(hours=float(rng.uniform(0, 8 * 7 * 24)))
        category = "Theft" if i % 2 else "Burglary"
        incident = Incident(
            cad_reference=f"CAD/KNOWN/{i}",
            category=category,
            caller_name=NAME,
            caller_phone=PHONE,
            summary=SUMMARY,
            location_text="99 Laburnum Grove",
            received_at=received,
            eligibility="eligible",
            eligibility_at=received,
        )
        session.add(incident)
        session.flush()
        if cohort == "video":
            hours = float(rng.exponential(VIDEO_HOURS_MEAN))
            deployed = bool(rng.random() < 0.2)
        elif cohort == "usual":
            hours = float(rng.lognormal(USUAL_LOG_MU, USUAL_LOG_SIGMA))
            deployed = True
        else:
            hours = float(rng.exponential(VIDEO_HOURS_MEAN))
            deployed = bool(rng.random() < 0.3)
        responded = received + timedelta(hours=hours)
        if cohort != "usual":
            incident.deployment_needed = deployed
            incident.outcome_code = "officer_to_attend" if deployed else "advice_given"
            _video_call(session, incident, user, f"k{i}", responded)
        if cohort != "service":
            session.add(
                TrialAllocation(
                    trial_id=trial.id,
                    incident_id=incident.id,
                    stratum=category,
                    consented=True,
                    consent_by_id=user.id,
                    arm=cohort,
                    revealed_at=received,
                    in_person_at=responded if cohort == "usual" else None,
                    in_person_outcome="crime_recorded" if cohort == "usual" else None,
                )
            )
        truth.hours[cohort].append(hours)
        truth.deployed[cohort].append(deployed)
        week = (received.date() - timedelta(days=received.weekday())).isoformat()
        truth.weeks[(week, cohort)] += 1
        if rng.random() < P_ANSWER:
            handling = _rating(rng, rng.random() < P_POSITIVE[cohort])
            outcome = _rating(rng, rng.random() < P_SATISFIED[cohort])
            again = bool(rng.random() < 0.9)
            truth.answers[cohort].append((handling, outcome, again))
            session.add(
                SurveyResponse(
                    incident_id=incident.id,
                    cohort=cohort,
                    channel="page",
                    handling=handling,
                    outcome=outcome,
                    use_again=again,
                    comment=COMMENT,
                )
            )
    # Allocated to an arm whose response never came: the caller never joined the video
    # call, or the visit is not recorded yet. Not cases (nothing to time), and the usual
    # arm's are no officer sent; the trial's counts still hold them.
    for j in range(2 * N_UNTIMED):
        arm = "video" if j % 2 else "usual"
        received = START + timedelta(days=j)
        untimed = Incident(
            cad_reference=f"CAD/UNTIMED/{j}",
            category="Theft",
            caller_name=NAME,
            caller_phone=PHONE,
            received_at=received,
            eligibility="eligible",
            eligibility_at=received,
        )
        session.add(untimed)
        session.flush()
        if arm == "video":
            invite = Invite(
                incident_id=untimed.id,
                token_hash=hashlib.sha256(f"u{j}".encode()).hexdigest(),
                created_by_id=user.id,
                expires_at=received + timedelta(days=1),
            )
            session.add(invite)
            session.flush()
            session.add(
                Call(
                    public_id=f"u{j}",
                    incident_id=untimed.id,
                    invite_id=invite.id,
                    state="expired",
                )
            )
        session.add(
            TrialAllocation(
                trial_id=trial.id,
                incident_id=untimed.id,
                stratum="Theft",
                consented=True,
                consent_by_id=user.id,
                arm=arm,
                revealed_at=received,
            )
        )
    # Outside the period: must not count.
    for j, when in enumerate((START - timedelta(days=10), START + timedelta(days=90))):
        outside = Incident(
            cad_reference=f"CAD/OUT/{j}",
            category="Theft",
            caller_name=NAME,
            caller_phone=PHONE,
            received_at=when,
        )
        session.add(outside)
        session.flush()
        _video_call(session, outside, user, f"out{j}", when + timedelta(hours=1))
    session.flush()
    return truth


def wilson(k: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


@dataclass
class Evaluated:
    """The module's dataset, built once per engine: its truth, the evaluation of it, the
    settings it was evaluated with, and where it lives (for `evr report`)."""

    truth: Truth
    evaluation: measures.Evaluation
    settings: Settings
    database_url: str


@pytest.fixture(scope="module")
def evaluated(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Evaluated]:
    """Built once per engine (1,000 incidents take seconds): the tests only read it."""
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("var"), database_url=module_database_url
    )
    db = Database(module_database_url)
    try:
        with db.session() as session:
            truth = build(session)
        start, end = measures.period("2026-01-01", "2026-03-31")
        with db.reader() as session:
            gathered = measures.gather(session, start, end)
        yield Evaluated(truth, measures.evaluate(gathered, settings), settings, module_database_url)
    finally:
        db.dispose()


def _estimate(evaluation: measures.Evaluation, key: str, cohort: str) -> measures.Estimate:
    return next(e for e in evaluation.estimates if e.key == key and e.cohort == cohort)


def _comparison(evaluation: measures.Evaluation, key: str) -> measures.Comparison:
    return next(c for c in evaluation.comparisons if c.key == key)


def test_rates_and_intervals_equal_an_independent_computation(
    evaluated: Evaluated,
) -> None:
    truth, evaluation = evaluated.truth, evaluated.evaluation
    assert evaluation.cohorts == ["video", "usual", "service"]
    for cohort in ("video", "usual", "service"):
        answers = truth.answers[cohort]
        n = len(answers)
        assert _estimate(evaluation, "incidents", cohort).n == len(truth.hours[cohort])
        for key, index in (("positive", 0), ("satisfied", 1)):
            k = sum(1 for a in answers if a[index] >= 4)
            got = _estimate(evaluation, key, cohort)
            assert (got.count, got.n) == (k, n)
            assert got.value == pytest.approx(k / n)
            assert (got.low, got.high) == pytest.approx(wilson(k, n), abs=1e-9)
        again = _estimate(evaluation, "use_again", cohort)
        assert again.count == sum(1 for a in answers if a[2])
        deployed = _estimate(evaluation, "deployed", cohort)
        assert deployed.count == sum(truth.deployed[cohort])
        hours = truth.hours[cohort]
        median = _estimate(evaluation, "median_hours", cohort)
        assert median.value == pytest.approx(float(np.median(hours)), rel=1e-6)
        # The median's interval runs between two observations around it.
        assert median.low <= median.value <= median.high
        assert any(abs(median.low - h) < 1e-6 for h in hours)
        assert any(abs(median.high - h) < 1e-6 for h in hours)
        mean = _estimate(evaluation, "mean_hours", cohort)
        t_ci = stats.ttest_1samp(hours, 0).confidence_interval(0.95)
        assert mean.value == pytest.approx(float(np.mean(hours)), rel=1e-6)
        assert (mean.low, mean.high) == pytest.approx((t_ci.low, t_ci.high), rel=1e-6)


def test_the_effect_sizes_are_recovered(evaluated: Evaluated) -> None:
    truth, evaluation = evaluated.truth, evaluated.evaluation
    ratio = _comparison(evaluation, "positive_ratio")
    a = sum(1 for x in truth.answers["video"] if x[0] >= 4)
    n1 = len(truth.answers["video"])
    c = sum(1 for x in truth.answers["usual"] if x[0] >= 4)
    n2 = len(truth.answers["usual"])
    rr = (a / n1) / (c / n2)
    se = math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)
    assert ratio.value == pytest.approx(rr, rel=1e-9)
    assert (ratio.low, ratio.high) == pytest.approx(
        (rr * math.exp(-1.959964 * se), rr * math.exp(1.959964 * se)), rel=1e-4
    )
    true_rr = P_POSITIVE["video"] / P_POSITIVE["usual"]
    assert ratio.low < true_rr < ratio.high
    assert ratio.value == pytest.approx(true_rr, rel=0.25)
    # 3.44 times as likely is 244% MORE likely: "+244% as likely" would read as 2.44 times.
    assert ratio.detail.endswith(f"{rr:.2f} times as likely ({100 * (rr - 1):.0f}% more likely)")
    assert "% as likely" not in ratio.detail
    assert not ratio.corrected and "0.5" not in ratio.method

    satisfied = _estimate(evaluation, "satisfied", "video")
    assert satisfied.value == pytest.approx(P_SATISFIED["video"], abs=0.1)
    assert _estimate(evaluation, "satisfied", "usual").value == pytest.approx(
        P_SATISFIED["usual"], abs=0.1
    )

    sooner = _comparison(evaluation, "hours_sooner")
    welch = stats.ttest_ind(truth.hours["usual"], truth.hours["video"], equal_var=False)
    assert sooner.value == pytest.approx(
        np.mean(truth.hours["usual"]) - np.mean(truth.hours["video"]), rel=1e-9
    )
    ci = welch.confidence_interval(0.95)
    assert (sooner.low, sooner.high) == pytest.approx((ci.low, ci.high), rel=1e-6)
    true_gap = math.exp(USUAL_LOG_MU + USUAL_LOG_SIGMA**2 / 2) - VIDEO_HOURS_MEAN
    assert sooner.low < true_gap < sooner.high
    assert sooner.value == pytest.approx(true_gap, rel=0.15)


def test_savings_and_weekly_volumes(evaluated: Evaluated) -> None:
    truth, evaluation, settings = evaluated.truth, evaluated.evaluation, evaluated.settings
    avoided = sum(1 for d in truth.deployed["video"] + truth.deployed["service"] if not d)
    saved = evaluation.savings
    assert saved.deployments_avoided == avoided
    hours = avoided * (
        settings.evaluation_visit_officer_hours - settings.evaluation_video_officer_hours
    )
    assert saved.officer_hours_saved == pytest.approx(hours)
    assert saved.officer_cost_saved == pytest.approx(hours * settings.evaluation_officer_hour_cost)
    assert saved.travel_cost_saved == pytest.approx(avoided * settings.evaluation_visit_travel_cost)
    weekly = {(w.isoformat(), k): n for w, k, n, _ in evaluation.weekly}
    assert {key: n for key, n in weekly.items() if n} == dict(truth.weeks)
    assert sum(weekly.values()) == 2 * N_ARM + N_SERVICE  # the two outside the period left out
    assert [p for p, _ in evaluation.periods] == ["2026-01", "2026-02", "2026-03"][
        : len(evaluation.periods)
    ]
    assert evaluation.trial is not None
    assert evaluation.trial.consented == 2 * N_ARM + 2 * N_UNTIMED
    assert sum(evaluation.trial.by_stratum["Theft"].values()) == N_ARM + 2 * N_UNTIMED
    assert evaluation.comments == sum(len(a) for a in truth.answers.values())


def _files_text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.iterdir()))


def assert_nothing_personal(text: str) -> None:
    for secret in (
        NAME,
        "Quartermaine",
        PHONE,
        "07700900777",
        "7700 900777",
        "CAD/KNOWN",
        "Laburnum",
        "Ophelia",
        "Acacia",
        "sup1",
    ):
        assert secret not in text, f"{secret!r} leaked into the report"


@DRAWN_ONCE
def test_the_report_files_hold_the_figures_and_nothing_personal(
    evaluated: Evaluated, tmp_path: Path
) -> None:
    evaluation = evaluated.evaluation
    written = report.write(evaluation, tmp_path / "out", "Wessex Police")
    names = sorted(p.name for p in written)
    assert names == sorted([*report.CSV_FILES, "summary.txt", "report.html"])
    rows = list(csv.DictReader((tmp_path / "out" / "measures.csv").open()))
    whole = [r for r in rows if r["period"] == "2026-01-01..2026-03-31"]
    for e in evaluation.estimates:
        row = next(r for r in whole if r["cohort"] == e.cohort and r["measure"] == e.key)
        assert int(row["n"]) == e.n
        if e.value is not None:
            assert float(row["value"]) == pytest.approx(e.value)
        if e.low is not None:
            assert float(row["ci_low"]) == pytest.approx(e.low)
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count('src="data:image/svg+xml;base64,') == 3
    assert "<script" not in page
    assert "Relative likelihood of a positive rating" in page
    assert_nothing_personal(_files_text(tmp_path / "out"))


@DRAWN_ONCE
def test_evr_report_writes_the_folder(evaluated: Evaluated, tmp_path: Path) -> None:
    """`evr report` writes the folder and prints its paths; a period backwards is a usage
    error (exit 2) that writes nothing. In this process (tests/support/cli.py)."""
    env = {"EVR_DATABASE_URL": evaluated.database_url, "EVR_DATA_DIR": str(tmp_path / "var")}
    out = tmp_path / "evr-report"
    result = run_evr(env, "report", "--from", "2026-01-01", "--to", "2026-03-31", str(out))
    assert result.returncode == 0, result.stderr
    assert str(out / "report.html") in result.stdout
    # Nothing but the paths: no matplotlib INFO lines (categorical units, fonts) on stderr.
    assert "INFO" not in result.stderr and "matplotlib" not in result.stderr, result.stderr
    weekly = list(csv.DictReader((out / "weekly.csv").open()))
    assert sum(int(r["incidents"]) for r in weekly) == 2 * N_ARM + N_SERVICE
    assert_nothing_personal(_files_text(out))

    never = tmp_path / "never"
    backwards = run_evr(env, "report", "--from", "2026-03-01", "--to", "2026-01-01", str(never))
    assert backwards.returncode == 2
    assert "the last day comes before the first" in backwards.stderr
    assert not never.exists()


def test_an_empty_period_gives_a_report_that_says_so(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """No incidents at all: no interval is invented and the page says there is nothing yet."""
    start, end = measures.period("2026-01-01", "2026-01-31")
    with db.session() as session:
        evaluation = measures.evaluate(measures.gather(session, start, end), settings)
    assert evaluation.estimates == [] and evaluation.trial is None
    assert all(c.value is None for c in evaluation.comparisons)
    report.write(evaluation, tmp_path, "Wessex Police")
    assert "No incident in this period" in (tmp_path / "report.html").read_text()
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        measures.period("31/01/2026", "2026-02-01")
    assert measures.period("2026-01-01", "2026-01-01")[1] - start == timedelta(days=1)
    assert date(2026, 1, 1) == start.date()


def _page_without_charts(evaluation: measures.Evaluation) -> str:
    """report.html's text as `evr report` renders it, less the charts (seconds of CPU)."""
    template = report.environment().get_template("report/standalone.html")
    return template.render(force_name="Wessex Police", **report.context(evaluation, None))


def test_the_opening_count_is_the_incidents_with_a_timed_response(
    evaluated: Evaluated,
) -> None:
    """Allocated incidents whose response never came (no call connected, no visit) are
    not cases: the report's opening count, each arm's count and the usual arm's "officer
    sent" leave them out; the trial's counts and the caveat still show them."""
    evaluation = evaluated.evaluation
    timed = 2 * N_ARM + N_SERVICE
    assert len(evaluation.cases) == timed
    assert all(c.responded_at is not None for c in evaluation.cases)
    for arm in ("video", "usual"):
        assert _estimate(evaluation, "incidents", arm).n == N_ARM
        assert evaluation.trial is not None
        assert evaluation.trial.allocated(arm) == N_ARM + N_UNTIMED
    sent = _estimate(evaluation, "deployed", "usual")
    assert (sent.count, sent.n) == (N_ARM, N_ARM)  # only the visits recorded
    page = _page_without_charts(evaluation)
    assert f'with a timed response: <strong id="cases">{timed}</strong>' in page
    caveats = " ".join(report.caveats(evaluation))
    assert f"{N_ARM} of {N_ARM + N_UNTIMED} allocated to video" in caveats
    assert f"{N_ARM} of {N_ARM + N_UNTIMED} allocated to the usual response" in caveats


def _newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 - p2, from scipy's Wilson intervals."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


@DRAWN_ONCE
def test_the_summary_says_the_seeds_sentences_from_the_data(
    evaluated: Evaluated, tmp_path: Path
) -> None:
    """The four headline sentences, each figure computed here another way: the rates and
    the risk ratio by hand, the satisfaction gap's interval by Newcombe's formula over
    scipy's Wilson intervals, the median gap with numpy and an own bootstrap, the mean
    gap's interval with scipy's Welch test."""
    truth, evaluation = evaluated.truth, evaluated.evaluation
    video, usual = truth.answers["video"], truth.answers["usual"]
    pos_v, pos_u = sum(a[0] >= 4 for a in video), sum(a[0] >= 4 for a in usual)
    rr = (pos_v / len(video)) / (pos_u / len(usual))
    se = math.sqrt(1 / pos_v - 1 / len(video) + 1 / pos_u - 1 / len(usual))
    low, high = rr * math.exp(-1.959964 * se), rr * math.exp(1.959964 * se)
    sat_v, sat_u = sum(a[1] >= 4 for a in video), sum(a[1] >= 4 for a in usual)
    d_low, d_high = _newcombe(sat_v, len(video), sat_u, len(usual))
    again = sum(a[2] for a in video)
    a_low, a_high = wilson(again, len(video))
    hours_v, hours_u = np.array(truth.hours["video"]), np.array(truth.hours["usual"])
    median_gap = float(np.median(hours_u) - np.median(hours_v))
    mean_gap = float(hours_u.mean() - hours_v.mean())
    welch = stats.ttest_ind(hours_u, hours_v, equal_var=False).confidence_interval(0.95)
    rng = np.random.default_rng(7)
    gaps = [
        np.median(rng.choice(hours_u, hours_u.size)) - np.median(rng.choice(hours_v, hours_v.size))
        for _ in range(4000)
    ]
    boot_low, boot_high = np.percentile(gaps, [2.5, 97.5])

    lines = report.summary(evaluation)
    assert lines[0] == (
        f"Callers who had a video response were {rr:.2f} times as likely "
        f"({100 * (rr - 1):.0f}% more likely) to be positive about how their call was "
        f"handled: {100 * pos_v / len(video):.1f}% against {100 * pos_u / len(usual):.1f}% "
        f"with the usual response (95% CI {low:.2f} to {high:.2f} times; {pos_v} of "
        f"{len(video)} survey answers against {pos_u} of {len(usual)})."
    )
    assert lines[1] == (
        f"{100 * sat_v / len(video):.1f}% of callers who had a video response were "
        f"satisfied with the outcome, against {100 * sat_u / len(usual):.1f}% with the "
        f"usual response (a difference of {100 * (sat_v / len(video) - sat_u / len(usual)):.1f}"
        f" percentage points, 95% CI {100 * d_low:.1f} to {100 * d_high:.1f}; {sat_v} of "
        f"{len(video)} survey answers against {sat_u} of {len(usual)})."
    )
    assert median_gap > 48  # so said in days, as the seed did
    assert lines[2].startswith(
        f"The response came {median_gap / 24:.1f} days sooner by video (median; 95% CI "
    )
    assert (
        f"mean {mean_gap / 24:.1f} days sooner, 95% CI {welch.low / 24:.1f} to "
        f"{welch.high / 24:.1f} days), from {N_ARM} video responses and {N_ARM} visits timed."
    ) in lines[2]
    median = _comparison(evaluation, "median_sooner")
    assert median.value == pytest.approx(median_gap, rel=1e-9)
    width = boot_high - boot_low
    assert median.low == pytest.approx(boot_low, abs=0.15 * width)
    assert median.high == pytest.approx(boot_high, abs=0.15 * width)
    assert f"95% CI {median.low / 24:.1f} to {median.high / 24:.1f} days;" in lines[2]
    assert lines[3] == (
        f"{100 * again / len(video):.1f}% of callers who had a video response would use it "
        f"again (95% CI {100 * a_low:.1f}% to {100 * a_high:.1f}%; {again} of {len(video)} "
        "who answered the question)."
    )
    assert "Not significant" not in " ".join(lines)  # a real effect, clearly shown

    written = report.write(evaluation, tmp_path, "Wessex Police")
    assert (tmp_path / "summary.txt").read_text().split("\n\n")[:4] == lines
    page = (tmp_path / "report.html").read_text()
    body = page[page.index("<h1>") :]
    assert body.index('class="headline"') < body.index('id="base"') < body.index('id="measures"')
    rows = {r["measure"]: r for r in csv.DictReader((tmp_path / "comparisons.csv").open())}
    assert float(rows["median_sooner"]["value"]) == pytest.approx(median_gap)
    assert float(rows["satisfied_difference"]["ci_low"]) == pytest.approx(100 * d_low)
    assert rows["positive_ratio"]["significant"] == "yes"
    assert "Newcombe" in rows["satisfied_difference"]["method"]
    assert len(written) == len(report.CSV_FILES) + 2


@DRAWN_ONCE
def test_caveats_are_printed_and_the_outside_cohort_is_shown_apart(
    evaluated: Evaluated,
) -> None:
    """The self-selected cohort has its own table and its own chart panels; the caveats
    (with each arm's survey response rate) sit beside the figures."""
    truth, evaluation = evaluated.truth, evaluated.evaluation
    page = _page_without_charts(evaluation)
    trial_table = page[page.index('id="measures"') : page.index('id="measures-outside"')]
    outside_table = page[page.index('id="measures-outside"') :].split("</table>")[0]
    assert 'data-cohort="video"' in trial_table and 'data-cohort="usual"' in trial_table
    assert 'data-cohort="service"' not in trial_table
    assert 'data-cohort="service"' in outside_table and 'data-cohort="video"' not in outside_table
    assert page.index('id="caveats"') < page.index('id="measures"')
    caveats = page[page.index('id="caveats"') :].split("</section>")[0]
    for cohort, said in (("video", "the video arm"), ("usual", "the usual arm")):
        k, n = len(truth.answers[cohort]), len(truth.hours[cohort])
        assert f"{100 * k / n:.1f}% of {said} ({k} of {n})" in caveats
    assert "never pooled" in caveats and "allocated at random" in caveats

    for make in (report.ratings_figure, report.weekly_figure, report.response_times_figure):
        figure = make(evaluation)
        titles = [ax.get_title() for ax in figure.axes]
        assert titles == ["The trial's arms", "Outside the trial\n(not randomised)"], make
        trial_colours = {tuple(p.get_facecolor()[:3]) for p in figure.axes[0].patches}
        assert trial_colours, make
        service = tuple(round(v, 6) for v in matplotlib.colors.to_rgb(report.COLOURS["service"]))
        assert service not in {tuple(round(v, 6) for v in c) for c in trial_colours}, make


def _overlaps(a: Bbox, b: Bbox) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@DRAWN_ONCE
def test_no_legend_covers_a_bar_and_every_week_is_on_the_time_axis(
    evaluated: Evaluated,
) -> None:
    """Drawn, each legend's box is clear of every bar; the weekly figures hold every week
    of the period (Monday 29 December to Monday 30 March), the quiet ones as zeros."""
    evaluation = evaluated.evaluation
    for make in (report.ratings_figure, report.weekly_figure):
        figure = make(evaluation)
        figure.draw_without_rendering()
        legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes if ax.get_legend())]
        assert legends, make
        bars = [p.get_window_extent() for ax in figure.axes for p in ax.patches if p.get_height()]
        assert bars
        for legend in legends:
            box = legend.get_window_extent()
            assert not any(_overlaps(box, bar) for bar in bars), make

    mondays = [date(2025, 12, 29) + timedelta(weeks=i) for i in range(14)]
    assert mondays[-1] == date(2026, 3, 30)
    assert sorted({w for w, _, _, _ in evaluation.weekly}) == mondays
    quiet = [w for w, _, n, _ in evaluation.weekly if n == 0]
    assert date(2026, 3, 16) in quiet  # the data stops after eight weeks; the axis does not
    figure = report.weekly_figure(evaluation)
    low, high = figure.axes[-1].get_xlim()
    assert low <= matplotlib.dates.date2num(mondays[0])
    assert high >= matplotlib.dates.date2num(mondays[-1] + timedelta(days=6))


def _case(cohort: str, hours: float, handling: int | None, use_again: bool | None) -> measures.Case:
    received = START + timedelta(days=1)
    return measures.Case(
        cohort=cohort,
        stratum="Theft",
        received_at=received,
        responded_at=received + timedelta(hours=hours),
        deployment_needed=cohort == "usual",
        handling=handling,
        outcome=handling,
        use_again=use_again,
    )


def test_small_arms_say_not_significant_and_a_missing_answer_is_no_data(
    tmp_path: Path,
) -> None:
    """No effect in six answers an arm: the sentences say "Not significant"; the usual arm
    never answered "use video again", so its bar reads "no data" and is not drawn."""
    cases = [_case("video", 2.0 + i, 5 if i % 2 else 2, True) for i in range(6)]
    cases += [_case("usual", 3.0 + i, 4 if i % 2 else 1, None) for i in range(6)]
    start, end = measures.period("2026-01-01", "2026-01-31")
    settings = load_settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/unused.db")
    evaluation = measures.evaluate(measures.Gathered(start, end, cases, None), settings)
    lines = report.summary(evaluation)
    assert lines[0].startswith("Callers who had a video response were 1.00 times as likely (0%")
    assert lines[0].endswith(report.NOT_SIGNIFICANT)
    assert lines[1].endswith(report.NOT_SIGNIFICANT)
    assert _estimate(evaluation, "use_again", "usual").value is None
    figure = report.ratings_figure(evaluation)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts == ["no data"]
    usual = matplotlib.colors.to_rgba(report.COLOURS["usual"])
    usual_bars = [p for p in figure.axes[0].patches if p.get_facecolor() == usual]
    assert len(usual_bars) == 2  # positive and satisfied; no 0% bar for "use again"
    svg = base64.b64decode(report.charts(evaluation).ratings.split(",", 1)[1]).decode()
    assert "no data" in svg


def test_the_zero_cell_correction_only_where_a_ratio_needs_it() -> None:
    """Every video answer positive: the ratio is finite as it is, so nothing is added
    (2.0 exactly). No usual answer positive: 0.5 is added to every cell, and said."""
    whole = measures.risk_ratio("r", "r", 10, 10, 5, 10)
    assert whole.value == 2.0 and not whole.corrected
    se = math.sqrt(1 / 10 - 1 / 10 + 1 / 5 - 1 / 10)
    assert (whole.low, whole.high) == pytest.approx(
        (2 * math.exp(-1.959964 * se), 2 * math.exp(1.959964 * se)), rel=1e-5
    )
    assert "0.5" not in whole.method
    zero = measures.risk_ratio("r", "r", 5, 10, 0, 10)
    assert zero.corrected
    assert zero.value == pytest.approx((5.5 / 11) / (0.5 / 11))
    assert measures.ZERO_CELL in zero.method
    assert measures.risk_ratio("r", "r", 0, 10, 0, 10).value is None


SURVEY_LINK = re.compile(r"/s/([A-Za-z0-9_-]{43})")


def test_the_service_path_to_evr_report(db: Database, settings: Settings, tmp_path: Path) -> None:
    """A small trial made only through the services the web handlers call (start, the
    caller's consent, reveal, the video call's life, the visit recorded, the survey on
    the page and by the SMS link), then `evr report`'s own command: its summary and CSVs
    equal figures computed here from the raw rows, with scipy. The effect is made large
    (video nearly always positive, the usual arm a third) so 48 incidents show it."""
    actor, device = Actor("sup1"), "d" * 64
    now = utcnow()
    with db.session() as session:
        user = add_user(session, "sup1", Role.SUPERVISOR, Role.HANDLER)
        session.flush()
        trial.start(session, actor, user, settings, seed=2026)
    for i in range(48):
        with db.session() as session:
            user = session.exec(select(User).where(User.username == "sup1")).one()
            hours, lag = 1.0 + (i % 7) / 2, 100.0 + 13 * (i % 11)
            incident = add_incident(
                session,
                user,
                f"CAD/PATH/{i}",
                category="Theft" if i % 2 else "Burglary",
                received_at=now - timedelta(hours=hours + lag),
            )
            incidents.set_eligibility(session, actor, user, incident, ["ok"], [True])
            trial.record_consent(session, actor, user, incident, consented=i < 40)
            arm = trial.reveal(session, actor, user, incident) if i < 40 else "service"
            if arm == "usual":
                trial.record_in_person(
                    session,
                    actor,
                    user,
                    incident,
                    settings,
                    "advice_given",
                    now - timedelta(hours=i),
                )
                link = survey.offer_by_sms(session, settings, incident)
                assert link is not None
                sms = session.get(OutboundMessage, link.message_id)
                opened = survey.open_sms_link(session, SURVEY_LINK.search(sms.body).group(1))
                assert not isinstance(opened, survey.SurveyProblem)
                good = i % 3 == 0
                answers = survey.Answers(4 if good else 2, 4 if good else 1, None, "")
                survey.answer(session, incident, answers, survey.SMS, "t")
                continue
            # The video call connects now: received `hours` ago, so that is its time to
            # response (the CAD's received_at, known once the arm is).
            incident.received_at = now - timedelta(hours=hours)
            session.add(incident)
            _, call, token = invites.create_invite(
                session, actor, incident, user, timedelta(hours=1)
            )
            invites.record_consent(session, call, Consent(True, False, False), device, "t")
            states.caller_waiting(session, call, "t")
            life.admit(session, settings, call, user, "t")
            life.end(session, settings, call, actor, "handler_ended")
            opened = survey.open_on_page(session, token, device)
            assert not isinstance(opened, survey.SurveyProblem)
            good = i % 10 != 0
            answers = survey.Answers(5 if good else 2, 5 if good else 2, True, "kind")
            survey.answer(session, incident, answers, survey.PAGE, "t", opened[0])

    # The figures from the raw rows, computed here.
    with db.reader() as session:
        arm_of = {a.incident_id: a for a in session.exec(select(TrialAllocation)).all()}
        connected = {c.incident_id: c.connected_at for c in session.exec(select(Call)).all()}
        answers_of = {r.incident_id: r for r in session.exec(select(SurveyResponse)).all()}
        hours: dict[str, list[float]] = {"video": [], "usual": []}
        positive: dict[str, list[bool]] = {"video": [], "usual": []}
        for incident in session.exec(select(Incident)).all():
            allocation = arm_of[incident.id]
            if allocation.arm is None:
                continue
            at = allocation.in_person_at if allocation.arm == "usual" else connected[incident.id]
            hours[allocation.arm].append((at - incident.received_at).total_seconds() / 3600)
            positive[allocation.arm].append(answers_of[incident.id].handling >= 4)
    a, n1 = sum(positive["video"]), len(positive["video"])
    c, n2 = sum(positive["usual"]), len(positive["usual"])
    rr = (a / n1) / (c / n2)
    se = math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)
    median_gap = float(np.median(hours["usual"]) - np.median(hours["video"]))
    welch = stats.ttest_ind(hours["usual"], hours["video"], equal_var=False)

    first = (now - timedelta(days=40)).date().isoformat()
    args = cli.build_parser().parse_args(
        ["report", "--from", first, "--to", now.date().isoformat(), str(tmp_path / "out")]
    )
    assert args.run == "governance:cmd_report"
    assert governance.cmd_report(settings, args) == 0
    lines = (tmp_path / "out" / "summary.txt").read_text().split("\n\n")
    assert lines[0].startswith(
        f"Callers who had a video response were {rr:.2f} times as likely "
        f"({100 * (rr - 1):.0f}% more likely) to be positive about how their call was handled"
    )
    low, high = rr * math.exp(-1.959964 * se), rr * math.exp(1.959964 * se)
    assert f"(95% CI {low:.2f} to {high:.2f} times; {a} of {n1} survey answers" in lines[0]
    assert lines[2].startswith(f"The response came {median_gap / 24:.1f} days sooner by video")
    rows = {r["measure"]: r for r in csv.DictReader((tmp_path / "out" / "comparisons.csv").open())}
    assert float(rows["positive_ratio"]["value"]) == pytest.approx(rr)
    assert float(rows["median_sooner"]["value"]) == pytest.approx(median_gap)
    ci = welch.confidence_interval(0.95)
    assert float(rows["hours_sooner"]["ci_low"]) == pytest.approx(ci.low, rel=1e-6)
    assert float(rows["hours_sooner"]["ci_high"]) == pytest.approx(ci.high, rel=1e-6)
    measures_rows = list(csv.DictReader((tmp_path / "out" / "measures.csv").open()))
    counts = {
        r["cohort"]: int(r["n"])
        for r in measures_rows
        if r["measure"] == "incidents" and ".." in r["period"]
    }
    assert counts == {"video": n1, "usual": n2, "service": 8}
    assert n1 + n2 == 40
