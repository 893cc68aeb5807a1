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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from appliance.services.evaluation.measures import COHORT_LABELS, COHORTS, Estimate, Evaluation

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
COLOURS = {"video": "#1d70b8", "usual": "#d4351c", "service": "#00703c"}
CSV_FILES = ("measures.csv", "comparisons.csv", "weekly.csv", "savings.csv", "trial.csv")


@dataclass(frozen=True)
class Charts:
    response_times: str
    ratings: str
    weekly: str


def _svg(draw: Callable[[Axes], None], width: float = 7.0, height: float = 3.6) -> str:
    """One chart as a data: URL of its SVG."""
    with matplotlib.rc_context({"svg.hashsalt": "evr", "svg.fonttype": "none", "font.size": 9}):
        figure = Figure(figsize=(width, height))
        draw(figure.subplots())
        figure.tight_layout()
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue().encode()).decode()


def charts(evaluation: Evaluation) -> Charts:
    cohorts = evaluation.cohorts

    def response_times(axes: Axes) -> None:
        data = [
            [
                h
                for c in evaluation.cases
                if c.cohort == k and (h := c.hours_to_response) is not None
            ]
            for k in cohorts
        ]
        shown = [(k, d) for k, d in zip(cohorts, data, strict=True) if d]
        if shown:
            box = axes.boxplot(
                [d for _, d in shown],
                tick_labels=[COHORT_LABELS[k] for k, _ in shown],
                orientation="horizontal",
                patch_artist=True,
            )
            for patch, (k, _) in zip(box["boxes"], shown, strict=True):
                patch.set_facecolor(COLOURS[k])
                patch.set_alpha(0.5)
            if min(min(d) for _, d in shown) > 0:
                axes.set_xscale("log")
        else:
            axes.text(0.5, 0.5, "No responses timed yet", ha="center", transform=axes.transAxes)
        axes.set_xlabel("Hours from the incident being received to the first response")
        axes.set_title("Time to response")

    def ratings(axes: Axes) -> None:
        keys = ("positive", "satisfied", "use_again")
        labels = ("Positive about handling", "Satisfied with outcome", "Would use video again")
        width = 0.8 / max(len(cohorts), 1)
        for i, cohort in enumerate(cohorts):
            found = {e.key: e for e in evaluation.estimates if e.cohort == cohort}
            values: list[float] = []
            errors: list[list[float]] = [[], []]
            for key in keys:
                e = found.get(key)
                v = e.value if e and e.value is not None else 0.0
                values.append(100 * v)
                errors[0].append(100 * (v - e.low) if e and e.low is not None else 0)
                errors[1].append(100 * (e.high - v) if e and e.high is not None else 0)
            axes.bar(
                [x + i * width for x in range(len(keys))],
                values,
                width,
                yerr=errors,
                capsize=3,
                color=COLOURS[cohort],
                label=COHORT_LABELS[cohort],
            )
        axes.set_xticks([x + width * (len(cohorts) - 1) / 2 for x in range(len(keys))], labels)
        axes.set_ylim(0, 100)
        axes.set_ylabel("% of survey answers (95% CI)")
        axes.set_title("Caller survey by cohort")
        if cohorts:
            axes.legend(loc="lower right")

    def weekly(axes: Axes) -> None:
        weeks = sorted({w for w, _, _, _ in evaluation.weekly})
        bottom = [0] * len(weeks)
        for cohort in COHORTS:
            counts = {w: n for w, k, n, _ in evaluation.weekly if k == cohort}
            if not counts:
                continue
            heights = [counts.get(w, 0) for w in weeks]
            axes.bar(
                [w.isoformat() for w in weeks],
                heights,
                bottom=bottom,
                color=COLOURS[cohort],
                label=COHORT_LABELS[cohort],
            )
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        axes.set_ylabel("Incidents")
        axes.set_xlabel("Week beginning")
        axes.set_title("Weekly volumes")
        axes.tick_params(axis="x", labelrotation=45)
        if weeks:
            axes.legend()

    return Charts(_svg(response_times), _svg(ratings), _svg(weekly))


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


def context(evaluation: Evaluation, chart_urls: Charts | None) -> dict[str, Any]:
    return {
        "evaluation": evaluation,
        "charts": chart_urls,
        "labels": COHORT_LABELS,
        "fmt": fmt,
        "number": _number,
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
    comparisons: list[list[object]] = [["measure", "label", "value", "ci_low", "ci_high", "note"]]
    for c in evaluation.comparisons:
        comparisons.append([c.key, c.label, c.value, c.low, c.high, c.detail])
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
    """report.html and the CSV files in ``outdir`` (made if missing); the paths written."""
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in csv_tables(evaluation).items():
        path = outdir / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(["" if v is None else v for v in row] for row in rows)
        written.append(path)
    page = outdir / "report.html"
    page.write_text(html(evaluation, force_name), encoding="utf-8")
    written.append(page)
    return written
