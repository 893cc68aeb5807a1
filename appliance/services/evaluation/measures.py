"""The evaluation's measures, with counts and 95% confidence intervals.

Cases are incidents received in the period that had a response we can time: the
trial's video and usual-response arms (once revealed), and video responses outside
the trial (``service``). Nothing personal leaves this module: a case carries its
cohort, its category, times, whether someone was sent and the survey's ratings.

The statistics come from statsmodels and scipy, not from formulas of our own:
Wilson intervals for proportions (``proportion_confint``), the distribution-free
interval for a median (``scipy.stats.quantile_test``), t intervals for a mean and
Welch's interval for a difference of means (``DescrStatsW``, ``CompareMeans``), the
Mann-Whitney U test, the risk ratio with its log-scale interval (``Table2x2``), the
Newcombe interval for a difference of two proportions (``confint_proportions_2indep``)
and a bootstrap interval for a difference of medians (``scipy.stats.bootstrap``, with a
fixed seed so the same data gives the same report). docs/evaluation.md says what each
measure means.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from scipy import stats
from sqlmodel import Session, col, func, select
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from appliance import dates
from appliance.config import Settings
from appliance.models import (
    Call,
    Incident,
    Invite,
    SurveyResponse,
    TrialAllocation,
)
from appliance.services.evaluation.survey import SERVICE, USUAL_ARM, VIDEO_ARM

COHORTS = (VIDEO_ARM, USUAL_ARM, SERVICE)
COHORT_LABELS = {
    VIDEO_ARM: "Video (trial arm)",
    USUAL_ARM: "Usual response (trial arm)",
    SERVICE: "Video (outside the trial)",
}
ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 20260101
ZERO_CELL = "0.5 added to every cell (an arm had no such rating)"


@dataclass(frozen=True)
class Case:
    """One incident, as the measures need it: nothing that names or reaches anyone."""

    cohort: str
    stratum: str
    received_at: datetime
    responded_at: datetime | None
    deployment_needed: bool | None
    handling: int | None = None
    outcome: int | None = None
    use_again: bool | None = None
    commented: bool = False

    @property
    def hours_to_response(self) -> float | None:
        if self.responded_at is None:
            return None
        return (self.responded_at - self.received_at).total_seconds() / 3600.0

    @property
    def answered(self) -> bool:
        return self.handling is not None


@dataclass(frozen=True)
class Estimate:
    """A measure for one cohort: its value, 95% interval and the counts behind it."""

    key: str
    label: str
    cohort: str
    n: int
    count: int | None
    value: float | None
    low: float | None
    high: float | None
    unit: str


@dataclass(frozen=True)
class Comparison:
    """The video arm against the usual-response arm."""

    key: str
    label: str
    value: float | None
    low: float | None
    high: float | None
    unit: str
    detail: str = ""
    n_video: int = 0
    n_usual: int = 0
    method: str = ""
    corrected: bool = False

    @property
    def no_effect(self) -> float:
        """The value that means no difference: 1 for a ratio, 0 for a difference."""
        return 1.0 if self.unit == "ratio" else 0.0

    @property
    def significant(self) -> bool | None:
        """Whether the 95% interval leaves out "no difference"; None without one."""
        if self.low is None or self.high is None:
            return None
        return not self.low <= self.no_effect <= self.high


@dataclass(frozen=True)
class Savings:
    deployments_avoided: int
    officer_hours_saved: float
    officer_cost_saved: float
    travel_cost_saved: float

    @property
    def total_saved(self) -> float:
        return self.officer_cost_saved + self.travel_cost_saved


@dataclass(frozen=True)
class TrialCounts:
    consented: int
    declined: int
    consent_rate: Estimate
    by_stratum: dict[str, dict[str, int]]

    def allocated(self, arm: str) -> int:
        """Incidents received in the period and allocated to ``arm``, timed or not."""
        return sum(arms.get(arm, 0) for arms in self.by_stratum.values())


@dataclass
class Evaluation:
    start: datetime
    end: datetime
    cases: list[Case]
    estimates: list[Estimate]
    comparisons: list[Comparison]
    periods: list[tuple[str, list[Estimate]]]
    weekly: list[tuple[date, str, int, int]]
    savings: Savings
    trial: TrialCounts | None
    comments: int
    positive_from: int
    cohorts: list[str] = field(default_factory=list)


def period(first: str, last: str) -> tuple[datetime, datetime]:
    """``[first day 00:00 UTC, the day after the last 00:00 UTC)`` from YYYY-MM-DD strings;
    a day outside ``appliance.dates``' range raises ``DateOutOfRange`` naming ``from`` or
    ``to`` (the report form's fields)."""
    try:
        start, stop = date.fromisoformat(first.strip()), date.fromisoformat(last.strip())
    except ValueError:
        raise ValueError("give the days as YYYY-MM-DD, e.g. 2026-01-31") from None
    dates.day_within("from", start)
    dates.day_within("to", stop)
    if stop < start:
        raise ValueError("the last day comes before the first")
    return (
        datetime(start.year, start.month, start.day, tzinfo=UTC),
        datetime(stop.year, stop.month, stop.day, tzinfo=UTC) + timedelta(days=1),
    )


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def proportion(key: str, label: str, cohort: str, count: int, n: int) -> Estimate:
    """A share with its Wilson interval (statsmodels)."""
    if n == 0:
        return Estimate(key, label, cohort, 0, 0, None, None, None, "%")
    low, high = proportion_confint(count, n, alpha=ALPHA, method="wilson")
    return Estimate(key, label, cohort, n, count, count / n, float(low), float(high), "%")


def median_hours(key: str, label: str, cohort: str, hours: Sequence[float]) -> Estimate:
    """The median with scipy's distribution-free (order statistic) interval."""
    if not hours:
        return Estimate(key, label, cohort, 0, None, None, None, None, "hours")
    median = float(np.median(hours))
    low = high = None
    if len(hours) >= 6:  # fewer points cannot give a 95% interval from order statistics
        interval = stats.quantile_test(np.asarray(hours), q=median, p=0.5).confidence_interval(
            1 - ALPHA
        )
        low, high = _finite(interval.low), _finite(interval.high)
    return Estimate(key, label, cohort, len(hours), None, median, low, high, "hours")


def mean_hours(key: str, label: str, cohort: str, hours: Sequence[float]) -> Estimate:
    """The mean with its t interval (statsmodels ``DescrStatsW``)."""
    if not hours:
        return Estimate(key, label, cohort, 0, None, None, None, None, "hours")
    described = DescrStatsW(np.asarray(hours, dtype=float))
    low = high = None
    if len(hours) >= 2:
        low, high = (_finite(v) for v in described.tconfint_mean(alpha=ALPHA))
    return Estimate(key, label, cohort, len(hours), None, float(described.mean), low, high, "hours")


def likelihood_words(ratio: float) -> str:
    """ "3.44 times as likely (244% more likely)": the ratio, then the change it means
    (a ratio of 3.44 is 244% more, never "+244% as likely", which reads as 2.44)."""
    change = 100 * (ratio - 1)
    more = f"{change:.0f}% more likely" if change >= 0 else f"{-change:.0f}% less likely"
    return f"{ratio:.2f} times as likely ({more})"


def risk_ratio(key: str, label: str, hits_a: int, n_a: int, hits_b: int, n_b: int) -> Comparison:
    """How many times as likely in A as in B, with the log-scale interval (``Table2x2``).

    The ratio and its interval are finite unless an arm has no hits; only then 0.5 is
    added to every cell (Haldane-Anscombe), and the comparison says so. A column of
    zeros elsewhere (every answer positive) needs nothing added.
    """
    if n_a == 0 or n_b == 0:
        return Comparison(key, label, None, None, None, "ratio", "needs answers in both arms")
    if hits_a == 0 and hits_b == 0:
        return Comparison(
            key, label, None, None, None, "ratio", "no such rating in either arm", n_a, n_b
        )
    cells = np.array([[hits_a, n_a - hits_a], [hits_b, n_b - hits_b]], dtype=float)
    corrected = hits_a == 0 or hits_b == 0
    table = Table2x2(cells + 0.5 if corrected else cells, shift_zeros=False)
    low, high = table.riskratio_confint(alpha=ALPHA)
    value = float(table.riskratio)
    method = "risk ratio, log-scale (Katz) interval" + (f"; {ZERO_CELL}" if corrected else "")
    return Comparison(
        key,
        label,
        value,
        _finite(low),
        _finite(high),
        "ratio",
        f"{hits_a}/{n_a} against {hits_b}/{n_b}; {likelihood_words(value)}",
        n_a,
        n_b,
        method,
        corrected,
    )


def proportion_difference(
    key: str, label: str, hits_a: int, n_a: int, hits_b: int, n_b: int
) -> Comparison:
    """A's share minus B's, in percentage points, with Newcombe's interval (statsmodels)."""
    if n_a == 0 or n_b == 0:
        return Comparison(key, label, None, None, None, "points", "needs answers in both arms")
    low, high = confint_proportions_2indep(
        hits_a, n_a, hits_b, n_b, method="newcomb", compare="diff", alpha=ALPHA
    )
    value = 100 * (hits_a / n_a - hits_b / n_b)
    return Comparison(
        key,
        label,
        value,
        100 * float(low),
        100 * float(high),
        "points",
        f"{hits_a}/{n_a} against {hits_b}/{n_b}",
        n_a,
        n_b,
        "difference of proportions, Newcombe's hybrid score interval",
    )


def mean_difference(key: str, label: str, a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Mean of B minus mean of A (hours sooner), Welch's interval and Mann-Whitney's p."""
    if len(a) < 2 or len(b) < 2:
        return Comparison(key, label, None, None, None, "hours", "needs two or more in each arm")
    compared = CompareMeans(DescrStatsW(np.asarray(b, float)), DescrStatsW(np.asarray(a, float)))
    low, high = compared.tconfint_diff(alpha=ALPHA, usevar="unequal")
    value = float(np.mean(b) - np.mean(a))
    p = stats.mannwhitneyu(a, b, alternative="two-sided").pvalue
    return Comparison(
        key,
        label,
        value,
        _finite(low),
        _finite(high),
        "hours",
        f"Mann-Whitney U p = {p:.3g}",
        len(a),
        len(b),
        "difference of means, Welch's interval",
    )


def median_difference(key: str, label: str, a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Median of B minus median of A (hours sooner): the robust figure for skewed times,
    with a percentile bootstrap interval (scipy, a fixed seed: the same data gives the
    same interval in every report)."""
    if len(a) < 2 or len(b) < 2:
        return Comparison(key, label, None, None, None, "hours", "needs two or more in each arm")

    def gap(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.asarray(np.median(y, axis=axis) - np.median(x, axis=axis))

    interval = stats.bootstrap(
        (np.asarray(a, float), np.asarray(b, float)),
        gap,
        n_resamples=BOOTSTRAP_RESAMPLES,
        batch=1000,
        method="percentile",
        confidence_level=1 - ALPHA,
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    ).confidence_interval
    return Comparison(
        key,
        label,
        float(np.median(b) - np.median(a)),
        _finite(interval.low),
        _finite(interval.high),
        "hours",
        f"medians {np.median(b):.1f} h (usual) and {np.median(a):.1f} h (video)",
        len(a),
        len(b),
        f"difference of medians, percentile bootstrap interval ({BOOTSTRAP_RESAMPLES:,} resamples)",
    )


def load_cases(session: Session, start: datetime, end: datetime) -> list[Case]:
    """The period's incidents that had a response the box can time, as cases (a few
    queries, no N+1). An incident allocated to an arm whose response never came (no
    call connected, no visit recorded) is not a case: the trial's counts still show it
    among those allocated."""
    incidents = list(
        session.exec(
            select(Incident).where(
                col(Incident.received_at) >= start, col(Incident.received_at) < end
            )
        ).all()
    )
    ids = [i.id for i in incidents]
    if not ids:
        return []
    allocations = {
        a.incident_id: a
        for a in session.exec(
            select(TrialAllocation).where(col(TrialAllocation.incident_id).in_(ids))
        ).all()
    }
    first_video = dict(
        session.exec(
            select(Call.incident_id, func.min(Call.connected_at))
            .join(Invite, col(Invite.id) == col(Call.invite_id))
            .where(
                col(Call.incident_id).in_(ids),
                Invite.kind == "video",
                col(Call.connected_at).is_not(None),
            )
            .group_by(col(Call.incident_id))
        ).all()
    )
    answers = {
        r.incident_id: r
        for r in session.exec(
            select(SurveyResponse).where(col(SurveyResponse.incident_id).in_(ids))
        ).all()
    }
    cases = []
    for incident in incidents:
        allocation = allocations.get(incident.id or 0)
        responded: datetime | None
        deployed: bool | None
        if allocation is not None and allocation.arm == USUAL_ARM:
            # An officer was sent only if the visit is recorded (else it is no case).
            cohort, responded, deployed = USUAL_ARM, allocation.in_person_at, True
        elif allocation is not None and allocation.arm == VIDEO_ARM:
            cohort = VIDEO_ARM
            responded, deployed = first_video.get(incident.id or 0), incident.deployment_needed
        elif incident.id in first_video:
            cohort = SERVICE
            responded, deployed = first_video[incident.id], incident.deployment_needed
        else:
            continue
        if responded is None:
            continue
        if responded.tzinfo is None:
            responded = responded.replace(tzinfo=incident.received_at.tzinfo)
        answer = answers.get(incident.id or 0)
        cases.append(
            Case(
                cohort=cohort,
                stratum=incident.category,
                received_at=incident.received_at,
                responded_at=responded,
                deployment_needed=deployed,
                handling=answer.handling if answer else None,
                outcome=answer.outcome if answer else None,
                use_again=answer.use_again if answer else None,
                commented=bool(answer.comment) if answer else False,
            )
        )
    return cases


def cohort_estimates(cases: Iterable[Case], cohort: str, positive_from: int) -> list[Estimate]:
    mine = [c for c in cases if c.cohort == cohort]
    hours = [h for c in mine if (h := c.hours_to_response) is not None]
    answered = [c for c in mine if c.answered]
    again = [c for c in answered if c.use_again is not None]
    decided = [c for c in mine if c.deployment_needed is not None]
    return [
        Estimate("incidents", "Incidents", cohort, len(mine), len(mine), None, None, None, "n"),
        median_hours("median_hours", "Time to response, median", cohort, hours),
        mean_hours("mean_hours", "Time to response, mean", cohort, hours),
        proportion(
            "positive",
            "Positive about how the call was handled",
            cohort,
            sum(1 for c in answered if (c.handling or 0) >= positive_from),
            len(answered),
        ),
        proportion(
            "satisfied",
            "Satisfied with the outcome",
            cohort,
            sum(1 for c in answered if (c.outcome or 0) >= positive_from),
            len(answered),
        ),
        proportion(
            "use_again",
            "Would use video again",
            cohort,
            sum(1 for c in again if c.use_again),
            len(again),
        ),
        proportion(
            "deployed",
            "An officer was sent",
            cohort,
            sum(1 for c in decided if c.deployment_needed),
            len(decided),
        ),
        proportion("response_rate", "Answered the survey", cohort, len(answered), len(mine)),
    ]


def compare_arms(cases: Sequence[Case], positive_from: int) -> list[Comparison]:
    video = [c for c in cases if c.cohort == VIDEO_ARM]
    usual = [c for c in cases if c.cohort == USUAL_ARM]

    def hits(group: list[Case], attr: str) -> tuple[int, int]:
        answered = [c for c in group if c.answered]
        return sum(1 for c in answered if (getattr(c, attr) or 0) >= positive_from), len(answered)

    positive_v, n_v = hits(video, "handling")
    positive_u, n_u = hits(usual, "handling")
    satisfied_v, _ = hits(video, "outcome")
    satisfied_u, _ = hits(usual, "outcome")
    hours_v = [h for c in video if (h := c.hours_to_response) is not None]
    hours_u = [h for c in usual if (h := c.hours_to_response) is not None]
    return [
        risk_ratio(
            "positive_ratio",
            "Relative likelihood of a positive rating (video ÷ usual)",
            positive_v,
            n_v,
            positive_u,
            n_u,
        ),
        risk_ratio(
            "satisfied_ratio",
            "Relative likelihood of satisfaction with the outcome (video ÷ usual)",
            satisfied_v,
            n_v,
            satisfied_u,
            n_u,
        ),
        proportion_difference(
            "satisfied_difference",
            "Satisfied with the outcome, difference (video − usual, percentage points)",
            satisfied_v,
            n_v,
            satisfied_u,
            n_u,
        ),
        median_difference(
            "median_sooner", "Response sooner by video (median, hours)", hours_v, hours_u
        ),
        mean_difference("hours_sooner", "Response sooner by video (mean, hours)", hours_v, hours_u),
    ]


def savings(cases: Iterable[Case], settings: Settings) -> Savings:
    """Deployments avoided by a video response, priced with the unit-cost settings."""
    avoided = sum(
        1 for c in cases if c.cohort in (VIDEO_ARM, SERVICE) and c.deployment_needed is False
    )
    hours = avoided * max(
        settings.evaluation_visit_officer_hours - settings.evaluation_video_officer_hours, 0.0
    )
    return Savings(
        deployments_avoided=avoided,
        officer_hours_saved=hours,
        officer_cost_saved=hours * settings.evaluation_officer_hour_cost,
        travel_cost_saved=avoided * settings.evaluation_visit_travel_cost,
    )


def week_of(moment: datetime) -> date:
    day = moment.date()
    return day - timedelta(days=day.weekday())


def weekly(
    cases: Sequence[Case], start: datetime, end: datetime
) -> list[tuple[date, str, int, int]]:
    """Incidents and survey answers per week (Monday) and cohort: every week of the
    period, a quiet one as zeros (a gap on the time axis is a week with nothing, not a
    week left out)."""
    counts: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0])
    for case in cases:
        row = counts[(week_of(case.received_at), case.cohort)]
        row[0] += 1
        row[1] += int(case.answered)
    present = [c for c in COHORTS if any(case.cohort == c for case in cases)]
    weeks, week, last = [], week_of(start), week_of(end - timedelta(days=1))
    while week <= last:
        weeks.append(week)
        week += timedelta(days=7)
    return [(w, c, *counts.get((w, c), (0, 0))) for w in weeks for c in present]


def trial_counts(session: Session, start: datetime, end: datetime) -> TrialCounts | None:
    rows = session.exec(
        select(TrialAllocation.consented, TrialAllocation.stratum, TrialAllocation.arm)
        .join(Incident, col(Incident.id) == col(TrialAllocation.incident_id))
        .where(col(Incident.received_at) >= start, col(Incident.received_at) < end)
    ).all()
    if not rows:
        return None
    consented = sum(1 for r in rows if r[0])
    by_stratum: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for _, stratum, arm in rows:
        if arm is not None:
            by_stratum[stratum][arm] += 1
    return TrialCounts(
        consented=consented,
        declined=len(rows) - consented,
        consent_rate=proportion("consent", "Agreed to take part", "trial", consented, len(rows)),
        by_stratum={s: dict(c) for s, c in sorted(by_stratum.items())},
    )


@dataclass(frozen=True)
class Gathered:
    """What the measures need from the database, read in one short read-only session."""

    start: datetime
    end: datetime
    cases: list[Case]
    trial: TrialCounts | None


def gather(session: Session, start: datetime, end: datetime) -> Gathered:
    """The rows of incidents received in [start, end); no statistics yet."""
    return Gathered(start, end, load_cases(session, start, end), trial_counts(session, start, end))


def evaluate(gathered: Gathered, settings: Settings) -> Evaluation:
    """Everything the report shows: seconds of CPU for a busy quarter, so it runs outside
    any database session (which would keep a transaction open) and off the event loop."""
    start, end, cases = gathered.start, gathered.end, gathered.cases
    positive_from = settings.evaluation_positive_rating
    present = [c for c in COHORTS if any(case.cohort == c for case in cases)]
    estimates = [e for c in present for e in cohort_estimates(cases, c, positive_from)]
    periods = []
    months = sorted({(c.received_at.year, c.received_at.month) for c in cases})
    for year, month in months:
        in_month = [c for c in cases if (c.received_at.year, c.received_at.month) == (year, month)]
        cohorts = [c for c in COHORTS if any(case.cohort == c for case in in_month)]
        periods.append(
            (
                f"{year}-{month:02d}",
                [e for c in cohorts for e in cohort_estimates(in_month, c, positive_from)],
            )
        )
    return Evaluation(
        start=start,
        end=end,
        cases=cases,
        estimates=estimates,
        comparisons=compare_arms(cases, positive_from),
        periods=periods,
        weekly=weekly(cases, start, end),
        savings=savings(cases, settings),
        trial=gathered.trial,
        comments=sum(1 for c in cases if c.commented),
        positive_from=positive_from,
        cohorts=present,
    )
