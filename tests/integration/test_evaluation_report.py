"""The evaluation report on a trial dataset with a known effect, made here.

The report must recover the effect sizes the data was drawn with (within tolerance),
and its figures must equal the same figures computed here another way: scipy's
binomial test for the Wilson intervals (the report uses statsmodels), the risk
ratio's log-scale interval by its formula, Welch's interval from scipy's t-test. It
must never carry a name, a phone number, a CAD reference, an address, the incident's
summary or a survey comment, and `evr report` must write the same thing to files.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sqlmodel import Session

from appliance.config import Settings, load_settings
from appliance.db import Database
from appliance.models import (
    Call,
    Incident,
    Invite,
    Role,
    SurveyResponse,
    Trial,
    TrialAllocation,
    User,
)
from appliance.services.evaluation import measures, report
from tests.support.staff import add_user

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
N_ARM = 160
N_SERVICE = 40
P_POSITIVE = {"video": 0.80, "usual": 0.35, "service": 0.75}
P_SATISFIED = {"video": 0.67, "usual": 0.27, "service": 0.6}  # Dorset's first-call figures
P_ANSWER = 0.7
VIDEO_HOURS_MEAN = 3.0  # exponential
USUAL_LOG_MU, USUAL_LOG_SIGMA = math.log(30.0), 0.5  # lognormal: mean 30 * e^(0.125)
NAME, PHONE = "Zebedee Quartermaine", "+447700900777"
COMMENT = "Ophelia Frobisher at 12 Acacia Avenue was very kind"
SUMMARY = "Bike stolen from the shed at 99 Laburnum Grove"


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
    assert "% as likely" in ratio.detail

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
    assert weekly == dict(truth.weeks)
    assert sum(weekly.values()) == 2 * N_ARM + N_SERVICE  # the two outside the period left out
    assert [p for p, _ in evaluation.periods] == ["2026-01", "2026-02", "2026-03"][
        : len(evaluation.periods)
    ]
    assert evaluation.trial is not None
    assert evaluation.trial.consented == 2 * N_ARM
    assert sum(evaluation.trial.by_stratum["Theft"].values()) == N_ARM
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


def test_the_report_files_hold_the_figures_and_nothing_personal(
    evaluated: Evaluated, tmp_path: Path
) -> None:
    evaluation = evaluated.evaluation
    written = report.write(evaluation, tmp_path / "out", "Wessex Police")
    names = sorted(p.name for p in written)
    assert names == sorted([*report.CSV_FILES, "report.html"])
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


def test_evr_report_writes_the_folder(evaluated: Evaluated, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVR_")}
    env.update(EVR_DATABASE_URL=evaluated.database_url, EVR_DATA_DIR=str(tmp_path / "var"))
    out = tmp_path / "evr-report"
    evr = [sys.executable, "-m", "appliance", "report"]
    result = subprocess.run(
        [*evr, "--from", "2026-01-01", "--to", "2026-03-31", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert str(out / "report.html") in result.stdout
    weekly = list(csv.DictReader((out / "weekly.csv").open()))
    assert sum(int(r["incidents"]) for r in weekly) == 2 * N_ARM + N_SERVICE
    assert_nothing_personal(_files_text(out))

    backwards = subprocess.run(
        [*evr, "--from", "2026-03-01", "--to", "2026-01-01", str(tmp_path / "never")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert backwards.returncode == 2
    assert "the last day comes before the first" in backwards.stderr
    assert not (tmp_path / "never").exists()


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
