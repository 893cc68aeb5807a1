"""The evaluation report: charts (matplotlib, SVG), HTML and CSV files.

Figures are made with ``matplotlib.figure.Figure`` (no pyplot, no global state, so
safe off the event loop in a thread) and rendered by its Agg-family SVG backend.
The same body serves ``evr report`` (a folder with report.html and the CSVs) and the
supervisors' page. Charts are SVG embedded as ``data:`` images: the page's CSP allows
``img-src data:`` and an SVG shown as an image runs nothing. Only the measures'
output goes in, never incident rows, so no name, number, address, CAD reference or
survey comment can reach the report.
"""

from __future__ import annotations

import base64
import csv
import io
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
import matplotlib
import matplotlib.dates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from appliance.services.evaluation.measures import (
    COHORT_LABELS,
    ZERO_CELL,
    Comparison,
    Estimate,
    Evaluation,
    likelihood_words,
)
from appliance.services.evaluation.survey import SERVICE, USUAL_ARM, VIDEO_ARM

# `evr report` logs at INFO; matplotlib's own INFO lines (units, fonts) are not the
# analyst's business.
logging.getLogger("matplotlib").setLevel(logging.WARNING)

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
COLOURS = {"video": "#1d70b8", "usual": "#d4351c", "service": "#00703c"}
CSV_FILES = ("measures.csv", "comparisons.csv", "weekly.csv", "savings.csv", "trial.csv")


TRIAL_COHORTS = (VIDEO_ARM, USUAL_ARM)
SAID = {VIDEO_ARM: "the video arm", USUAL_ARM: "the usual arm", SERVICE: "video outside the trial"}
NOT_SIGNIFICANT = "Not significant: the 95% interval includes no difference."


@dataclass(frozen=True)
class Charts:
    response_times: str
    ratings: str
    weekly: str


def _svg(figure: Figure) -> str:
    """One chart as a data: URL of its SVG."""
    with matplotlib.rc_context({"svg.hashsalt": "evr", "svg.fonttype": "none"}):
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue().encode()).decode()


def _figure(evaluation: Evaluation, height: float, across: bool) -> tuple[Figure, list[Axes]]:
    """A figure with the trial arms' panel and, apart from it, the outside-trial cohort's
    (self-selected, so never drawn among the randomised arms); the legend goes outside
    the panels, where it covers nothing."""
    panels = _panels(evaluation)
    with matplotlib.rc_context({"font.size": 9}):
        figure = Figure(figsize=(7.0, height), layout="constrained")
        if across:
            ratios = [max(len(g), 1) for g in panels]
            axes = figure.subplots(1, len(panels), squeeze=False, sharey=True, width_ratios=ratios)[
                0
            ]
        else:
            axes = figure.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    for ax, group in zip(axes, panels, strict=True):
        ax.set_title(
            "Outside the trial\n(not randomised)" if group == [SERVICE] else "The trial's arms",
            fontsize=9,
        )
    return figure, list(axes)


def _panels(evaluation: Evaluation) -> list[list[str]]:
    groups = [[c for c in evaluation.cohorts if c in TRIAL_COHORTS], [SERVICE]]
    return [g for g in groups if any(c in evaluation.cohorts for c in g)] or [[]]


def _legend(figure: Figure) -> None:
    handles, labels = [], []
    for ax in figure.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if handles:
        figure.legend(handles, labels, loc="outside lower center", ncols=len(handles))


def response_times_figure(evaluation: Evaluation) -> Figure:
    figure, axes = _figure(evaluation, 3.6, across=False)
    for ax, group in zip(axes, _panels(evaluation), strict=True):
        shown = [
            (k, [h for c in evaluation.cases if c.cohort == k and (h := c.hours_to_response)])
            for k in group
        ]
        shown = [(k, d) for k, d in shown if d]
        if shown:
            box = ax.boxplot(
                [d for _, d in shown],
                tick_labels=[COHORT_LABELS[k] for k, _ in shown],
                orientation="horizontal",
                patch_artist=True,
            )
            for patch, (k, _) in zip(box["boxes"], shown, strict=True):
                patch.set_facecolor(COLOURS[k])
                patch.set_alpha(0.5)
            if min(min(d) for _, d in shown) > 0:
                ax.set_xscale("log")
        else:
            ax.text(0.5, 0.5, "No responses timed yet", ha="center", transform=ax.transAxes)
    axes[-1].set_xlabel("Hours from the incident being received to the first response")
    figure.suptitle("Time to response", fontsize=10)
    return figure


RATINGS = (
    ("positive", "Positive about handling"),
    ("satisfied", "Satisfied with outcome"),
    ("use_again", "Would use video again"),
)


def ratings_figure(evaluation: Evaluation) -> Figure:
    """Bars with 95% intervals; a measure with no answers is written "no data", never
    drawn as a 0% bar."""
    figure, axes = _figure(evaluation, 3.8, across=True)
    for ax, group in zip(axes, _panels(evaluation), strict=True):
        width = 0.8 / max(len(group), 1)
        for i, cohort in enumerate(group):
            found = {e.key: e for e in evaluation.estimates if e.cohort == cohort}
            xs: list[float] = []
            values: list[float] = []
            errors: list[list[float]] = [[], []]
            for x, (key, _) in enumerate(RATINGS):
                e = found.get(key)
                at = x + i * width
                if e is None or e.value is None:
                    ax.text(at, 2, "no data", rotation=90, ha="center", va="bottom", fontsize=8)
                    continue
                xs.append(at)
                values.append(100 * e.value)
                # max(): at 0% or 100% Wilson's end can round a hair past the value
                errors[0].append(max(100 * (e.value - e.low), 0.0) if e.low is not None else 0.0)
                errors[1].append(max(100 * (e.high - e.value), 0.0) if e.high is not None else 0.0)
            ax.bar(
                xs,
                values,
                width,
                yerr=errors,
                capsize=3,
                color=COLOURS[cohort],
                label=COHORT_LABELS[cohort],
            )
        ax.set_xticks(
            [x + width * (len(group) - 1) / 2 for x in range(len(RATINGS))],
            [label for _, label in RATINGS],
            rotation=20,
            ha="right",
        )
        ax.set_ylim(0, 100)
    axes[0].set_ylabel("% of survey answers (95% CI)")
    figure.suptitle("Caller survey by cohort", fontsize=10)
    _legend(figure)
    return figure


def weekly_figure(evaluation: Evaluation) -> Figure:
    """Incidents per week on a time axis: every week of the period, a quiet one empty."""
    figure, axes = _figure(evaluation, 3.8, across=False)
    weeks = sorted({w for w, _, _, _ in evaluation.weekly})
    days = [float(matplotlib.dates.date2num(w)) for w in weeks]  # type: ignore[no-untyped-call]
    for ax, group in zip(axes, _panels(evaluation), strict=True):
        bottom = [0] * len(weeks)
        for cohort in group:
            counts = {w: n for w, k, n, _ in evaluation.weekly if k == cohort}
            heights = [counts.get(w, 0) for w in weeks]
            ax.bar(
                days,  # a time axis, not one category per week seen
                heights,
                width=6.0,
                align="edge",
                bottom=bottom,
                color=COLOURS[cohort],
                label=COHORT_LABELS[cohort],
            )
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.set_ylabel("Incidents")
    if weeks:
        axes[-1].set_xlim(days[0], days[-1] + 7)
        axes[-1].xaxis_date()
        axes[-1].xaxis.set_major_formatter(
            matplotlib.dates.DateFormatter("%d %b")  # type: ignore[no-untyped-call]
        )
    axes[-1].set_xlabel("Week beginning (Monday)")
    figure.suptitle("Weekly volumes", fontsize=10)
    _legend(figure)
    return figure


def charts(evaluation: Evaluation) -> Charts:
    return Charts(
        _svg(response_times_figure(evaluation)),
        _svg(ratings_figure(evaluation)),
        _svg(weekly_figure(evaluation)),
    )


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def fmt(estimate: Estimate) -> dict[str, str]:
    """An estimate as the page shows it."""
    if estimate.unit == "%":
        show = _percent
    elif estimate.unit == "n":
        return {"value": str(estimate.n), "ci": "", "counts": ""}
    else:
        show = _number
    counts = f"{estimate.count}/{estimate.n}" if estimate.count is not None else f"n = {estimate.n}"
    ci = f"{show(estimate.low)} to {show(estimate.high)}" if estimate.low is not None else "–"
    return {"value": show(estimate.value), "ci": ci, "counts": counts}


def _find(evaluation: Evaluation, key: str, cohort: str) -> Estimate | None:
    return next((e for e in evaluation.estimates if e.key == key and e.cohort == cohort), None)


def _compared(evaluation: Evaluation, key: str) -> Comparison | None:
    return next((c for c in evaluation.comparisons if c.key == key), None)


def _verdict(comparison: Comparison) -> str:
    return "" if comparison.significant is not False else " " + NOT_SIGNIFICANT


def _span(hours: float) -> tuple[float, str]:
    """Days for a gap of two days or more (the seed's "19 days sooner"), else hours."""
    return (24.0, "days") if abs(hours) >= 48 else (1.0, "hours")


def _sooner(
    value: float, low: float | None, high: float | None, per: float, unit: str
) -> tuple[str, str]:
    """("18.0 days sooner", "95% CI 15.2 to 20.1 days"), or "later" with the interval
    turned the same way."""
    word = "sooner" if value >= 0 else "later"
    sign = 1 if value >= 0 else -1
    said = f"{sign * value / per:.1f} {unit} {word}"
    if low is None or high is None:
        return said, "no interval"
    ends = sorted((sign * low / per, sign * high / per))
    return said, f"95% CI {ends[0]:.1f} to {ends[1]:.1f} {unit}"


def summary(evaluation: Evaluation) -> list[str]:
    """The seed's headline sentences, from this period's trial arms, each with its 95%
    interval, its counts, and "not significant" when the interval includes no effect."""
    if not any(c in evaluation.cohorts for c in TRIAL_COHORTS):
        return [
            "No incident of the trial's arms had a timed response in this period, so "
            "there is nothing to compare: only a randomised trial can say what the video "
            "response changes."
        ]
    lines = []
    positive = _compared(evaluation, "positive_ratio")
    pv, pu = _find(evaluation, "positive", VIDEO_ARM), _find(evaluation, "positive", USUAL_ARM)
    if positive and positive.value is not None and pv and pu and pv.value and pu.value:
        corrected = f" ({ZERO_CELL})" if positive.corrected else ""
        lines.append(
            f"Callers who had a video response were {likelihood_words(positive.value)} to "
            f"be positive about how their call was handled: {100 * pv.value:.1f}% against "
            f"{100 * pu.value:.1f}% with the usual response (95% CI {positive.low:.2f} to "
            f"{positive.high:.2f} times; {pv.count} of {pv.n} survey answers against "
            f"{pu.count} of {pu.n}){corrected}.{_verdict(positive)}"
        )
    else:
        lines.append(
            "Not enough survey answers yet to compare how positive callers were about how "
            f"their call was handled ({pv.n if pv else 0} from the video arm, "
            f"{pu.n if pu else 0} from the usual response)."
        )
    satisfied = _compared(evaluation, "satisfied_difference")
    sv, su = _find(evaluation, "satisfied", VIDEO_ARM), _find(evaluation, "satisfied", USUAL_ARM)
    if satisfied and satisfied.value is not None and sv and su and sv.value is not None:
        lines.append(
            f"{100 * sv.value:.1f}% of callers who had a video response were satisfied with "
            f"the outcome, against {100 * (su.value or 0):.1f}% with the usual response (a "
            f"difference of {satisfied.value:.1f} percentage points, 95% CI "
            f"{satisfied.low:.1f} to {satisfied.high:.1f}; {sv.count} of {sv.n} survey "
            f"answers against {su.count} of {su.n}).{_verdict(satisfied)}"
        )
    else:
        lines.append("Not enough survey answers yet to compare satisfaction with the outcome.")
    median, mean = _compared(evaluation, "median_sooner"), _compared(evaluation, "hours_sooner")
    if median and median.value is not None and mean and mean.value is not None:
        per, unit = _span(median.value)
        said, ci = _sooner(median.value, median.low, median.high, per, unit)
        mean_said, mean_ci = _sooner(mean.value, mean.low, mean.high, per, unit)
        lines.append(
            f"The response came {said} by video (median; {ci}; mean {mean_said}, "
            f"{mean_ci}), from {median.n_video} video responses and {median.n_usual} "
            f"visits timed.{_verdict(median)}"
        )
    else:
        lines.append("Not enough timed responses in both arms yet to say how much sooner.")
    again = _find(evaluation, "use_again", VIDEO_ARM)
    if again and again.value is not None:
        lines.append(
            f"{100 * again.value:.1f}% of callers who had a video response would use it again "
            f"(95% CI {100 * (again.low or 0):.1f}% to {100 * (again.high or 0):.1f}%; "
            f"{again.count} of {again.n} who answered the question)."
        )
    return lines


def caveats(evaluation: Evaluation) -> list[str]:
    """What the figures can and cannot say, printed beside them (docs/evaluation.md)."""
    said = [
        "Only the comparison of the trial's two arms says what the video response "
        "causes: those incidents were allocated at random."
    ]
    service = _find(evaluation, "incidents", SERVICE)
    if service is not None:
        said.append(
            f"Video responses outside the trial ({service.n}) are shown apart and never "
            "pooled with the arms: those callers chose video, and differ from those who "
            "could not or would not."
        )
    if evaluation.trial is not None:
        timed = {k: e.n if (e := _find(evaluation, "incidents", k)) else 0 for k in TRIAL_COHORTS}
        said.append(
            "The arms count incidents whose allocated response was timed: "
            f"{timed[VIDEO_ARM]} of {evaluation.trial.allocated(VIDEO_ARM)} allocated to "
            f"video (a call that connected) and {timed[USUAL_ARM]} of "
            f"{evaluation.trial.allocated(USUAL_ARM)} allocated to the usual response (a "
            "visit recorded). An allocated incident whose response never came is left out, "
            "which can favour the arm whose hardest cases drop out."
        )
    rates = [
        f"{_percent(e.value)} of {SAID[c]} ({e.count} of {e.n})"
        for c in evaluation.cohorts
        if (e := _find(evaluation, "response_rate", c)) is not None
    ]
    if rates:
        said.append(
            "Survey answers came from "
            + ", ".join(rates)
            + ": the ratings speak for those who answered, who may differ from those who "
            "did not."
        )
    said.append(
        "Times to response are skewed (a few waits are very long), so the median "
        "difference is the robust figure; the mean is given beside it."
    )
    for c in evaluation.comparisons:
        if c.corrected:
            said.append(f"{c.label}: {ZERO_CELL}, so the ratio and its interval are approximate.")
    said.append(
        "An incident belongs to the period by the day it was received (UTC): a survey "
        "answered after the period still counts for it. The months are descriptive, not "
        "separate tests."
    )
    return said


def context(evaluation: Evaluation, chart_urls: Charts | None) -> dict[str, Any]:
    return {
        "evaluation": evaluation,
        "charts": chart_urls,
        "labels": COHORT_LABELS,
        "fmt": fmt,
        "number": _number,
        "summary": summary(evaluation),
        "caveats": caveats(evaluation),
        "trial_cohorts": [c for c in evaluation.cohorts if c in TRIAL_COHORTS],
        "outside_cohorts": [c for c in evaluation.cohorts if c == SERVICE],
        "digits": {"ratio": 2, "points": 1, "hours": 1},
        "one_day": timedelta(days=1),
    }


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(default=True),
    )


def html(evaluation: Evaluation, force_name: str) -> str:
    """The standalone report.html."""
    template = environment().get_template("report/standalone.html")
    return template.render(force_name=force_name, **context(evaluation, charts(evaluation)))


def csv_tables(evaluation: Evaluation) -> dict[str, list[list[object]]]:
    """The CSV files' rows, header first."""
    head: list[object] = [
        "period",
        "cohort",
        "measure",
        "label",
        "n",
        "count",
        "value",
        "ci_low",
        "ci_high",
    ]
    measures: list[list[object]] = [head]
    whole = f"{evaluation.start.date()}..{(evaluation.end - timedelta(days=1)).date()}"
    for period, estimates in [(whole, evaluation.estimates), *evaluation.periods]:
        for e in estimates:
            measures.append(
                [period, e.cohort, e.key, e.label, e.n, e.count, e.value, e.low, e.high]
            )
    comparisons: list[list[object]] = [
        [
            "measure",
            "label",
            "value",
            "ci_low",
            "ci_high",
            "unit",
            "n_video",
            "n_usual",
            "significant",
            "method",
            "note",
        ]
    ]
    for c in evaluation.comparisons:
        significant = "" if c.significant is None else ("yes" if c.significant else "no")
        comparisons.append(
            [
                c.key,
                c.label,
                c.value,
                c.low,
                c.high,
                c.unit,
                c.n_video,
                c.n_usual,
                significant,
                c.method,
                c.detail,
            ]
        )
    weekly: list[list[object]] = [["week_beginning", "cohort", "incidents", "survey_answers"]]
    weekly += [[w.isoformat(), k, n, a] for w, k, n, a in evaluation.weekly]
    s = evaluation.savings
    savings: list[list[object]] = [
        ["measure", "value"],
        ["deployments_avoided", s.deployments_avoided],
        ["officer_hours_saved", s.officer_hours_saved],
        ["officer_cost_saved_gbp", s.officer_cost_saved],
        ["travel_cost_saved_gbp", s.travel_cost_saved],
        ["total_saved_gbp", s.total_saved],
    ]
    trial: list[list[object]] = [["stratum", "video", "usual"]]
    if evaluation.trial is not None:
        for stratum, arms in evaluation.trial.by_stratum.items():
            trial.append([stratum, arms.get("video", 0), arms.get("usual", 0)])
    return {
        "measures.csv": measures,
        "comparisons.csv": comparisons,
        "weekly.csv": weekly,
        "savings.csv": savings,
        "trial.csv": trial,
    }


def write(evaluation: Evaluation, outdir: Path, force_name: str) -> list[Path]:
    """report.html, summary.txt (the headline sentences and caveats, to quote) and the
    CSV files in ``outdir`` (made if missing); the paths written."""
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in csv_tables(evaluation).items():
        path = outdir / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(["" if v is None else v for v in row] for row in rows)
        written.append(path)
    text = outdir / "summary.txt"
    text.write_text(
        "\n\n".join([*summary(evaluation), "Caveats:", *caveats(evaluation)]) + "\n",
        encoding="utf-8",
    )
    written.append(text)
    page = outdir / "report.html"
    page.write_text(html(evaluation, force_name), encoding="utf-8")
    written.append(page)
    return written
