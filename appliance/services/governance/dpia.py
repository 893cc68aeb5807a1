"""``evr dpia``: a records-of-processing and DPIA annex written from the live settings
and the access rules in code, so the DPO signs what the box does, not what someone
typed. Markdown, and the same as plain HTML (headings, lists and tables only, escaped)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from appliance.config import Settings
from appliance.config.evidence import FILE_KINDS, RECORD_KINDS
from appliance.services.governance import notice

CATEGORIES = [
    ("Caller details", "name, phone number, location text of the incident", "incidents"),
    ("Video call", "recording (if agreed), still pictures, call timings, quality", "calls"),
    ("Uploads", "photos and videos the caller chose to send, with their hashes", "uploads"),
    (
        "Location",
        "latitude, longitude and accuracy, with the National Grid reference worked out from "
        "them, shared once, or on the call (once, or kept up to date if the caller agrees)",
        "locations",
    ),
    ("Chat", "messages typed during the call", "chat"),
    (
        "Witness statements",
        "account, declaration, signature, PDF (special category data possible)",
        "statements",
    ),
    (
        "RVR records",
        "safety answers, code word, DASH checklist and notes, Clare's Law "
        "requests and subjects (special category and criminal offence data)",
        "rvr",
    ),
    ("Survey", "ratings and an optional comment", "survey"),
    ("SMS", "phone number and text of every message sent", "outbox"),
    ("Staff", "accounts, roles, sessions, the audit trail of what each did", "identity"),
]

PURPOSES = [
    "Responding to an incident reported to the police and deciding the response "
    "(THRIVE): law enforcement purposes, DPA 2018 Part 3, s.31.",
    "Gathering and keeping evidence (recordings, uploads, statements): DPA 2018 s.31; "
    "sensitive processing only where strictly necessary (s.35, Schedule 8).",
    "Safeguarding victims of domestic abuse (RVR, DASH, Clare's Law): s.31 and s.35.",
    "Evaluating the service (survey, randomised trial): UK GDPR Art. 6(1)(e), the "
    "force's public task; survey answers are optional.",
    "Accountability: the hash-chained audit trail of who saw and did what (s.62 logging).",
]

SECURITY = [
    "Evidence sealed at rest: AES-256-GCM per file, data keys wrapped by a master key kept "
    "apart from the data and from every backup (docs/evidence.md).",
    "Deletion by crypto-shredding: the data key is destroyed, its fingerprint put on the "
    "shred list, which every restore honours.",
    "An append-only, hash-chained audit trail (UPDATE and DELETE refused by the database); "
    "viewing an incident, searching the trail and subject access are audited.",
    "Server-side sessions, Argon2 passwords, lockout after failed sign-ins, CSRF tokens, "
    "TLS on every connection; the caller's link is 256 random bits, only its hash kept.",
    "Export bundles signed with the box's Ed25519 key; backups hold no clear evidence.",
    "Runs on the force's own equipment; no data leaves the box but to the processors below.",
]


@dataclass(frozen=True)
class Rule:
    """Who may reach one route: a role list, "public", "signed_in" or "api_key"."""

    method: str
    path: str
    who: str


def _kind_days(settings: Settings) -> list[tuple[str, str]]:
    rows = []
    for kind in FILE_KINDS:
        rows.append(
            (
                kind,
                f"{settings.retention_days_for(kind)} days after made, once the incident is closed",
            )
        )
    rows.append(
        (
            "statement",
            f"evidential by rule; review {settings.evidential_review_days} "
            "days after the incident closed",
        )
    )
    for kind in RECORD_KINDS:
        rows.append(
            (kind, f"minimised {settings.retention_days_for(kind)} days after the incident closed")
        )
    for code, days in sorted(settings.retention_by_outcome.items()):
        rows.append((f"files, outcome {code}", f"{days} days after made"))
    for category, days in sorted(settings.retention_by_category.items()):
        rows.append((f"files, category {category}", f"{days} days after made"))
    for code in settings.evidential_outcomes:
        rows.append(
            (
                f"files, outcome {code}",
                f"evidential by rule, review {settings.evidential_review_days} days after close",
            )
        )
    return rows


def markdown(settings: Settings, rules: list[Rule]) -> str:
    facts = notice.of(settings)
    where = settings.database_url.split("@")[-1] if settings.database_url else "SQLite"
    lines = [
        f"# Records of processing and DPIA annex: {settings.force_name}",
        "",
        "Written by `evr dpia` from the settings this box runs with and the access rules "
        "in its code. Regenerate it after any change of settings.",
        "",
        "## Controller",
        "",
        f"- Controller: {facts.controller}",
        f"- Data Protection Officer: {facts.dpo_contact}",
        f"- Privacy notice: {settings.effective_public_url}/privacy",
        "",
        "## Purposes and lawful basis",
        "",
        *[f"- {p}" for p in PURPOSES],
        "",
        "## Categories of personal data",
        "",
        "| category | what | domain |",
        "|---|---|---|",
        *[f"| {name} | {what} | {domain} |" for name, what, domain in CATEGORIES],
        "",
        "## Retention",
        "",
        "Nothing of an open incident is purged; legal hold and evidential marks override "
        "every period (docs/governance.md).",
        "",
        "| kind | kept |",
        "|---|---|",
        *[f"| {kind} | {kept} |" for kind, kept in _kind_days(settings)],
        "",
        "## Processors and recipients",
        "",
        *([f"- {p.name}: {p.does}" for p in facts.processors] or ["- None outside the box."]),
        *(
            ["- The force's CAD (command and control), by signed webhook: incident events."]
            if settings.cad_webhook_url
            else []
        ),
        "",
        "## Where the data lives",
        "",
        f"- Database: {where}",
        f"- Sealed media: {settings.data_dir}",
        f"- Master key: {settings.effective_master_key_file} (kept apart from backups)",
        "",
        "## Security measures",
        "",
        *[f"- {s}" for s in SECURITY],
        "",
        "## Who can see what (from the access rules in code)",
        "",
        "| method | path | who |",
        "|---|---|---|",
        *[f"| {r.method} | `{r.path}` | {r.who} |" for r in rules],
        "",
    ]
    return "\n".join(lines)


def to_html(text: str, title: str) -> str:
    """A plain HTML rendering of the Markdown above (headings, lists, tables)."""
    body: list[str] = []
    in_list = in_table = False
    for line in text.splitlines():
        if in_list and not line.startswith("- "):
            body.append("</ul>")
            in_list = False
        if in_table and not line.startswith("|"):
            body.append("</table>")
            in_table = False
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            if not in_list:
                body.append("<ul>")
                in_list = True
            body.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.startswith("|"):
            cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
            if set("".join(cells)) <= {"-"}:
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                body.append("<table>")
                in_table = True
            body.append(
                "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"
            )
        elif line:
            body.append(f"<p>{html.escape(line)}</p>")
    if in_list:
        body.append("</ul>")
    if in_table:
        body.append("</table>")
    return (
        f'<!doctype html>\n<html lang="en-GB"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write(settings: Settings, rules: list[Rule], outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    text = markdown(settings, rules)
    md, page = outdir / "dpia.md", outdir / "dpia.html"
    md.write_text(text, encoding="utf-8")
    page.write_text(to_html(text, f"DPIA annex: {settings.force_name}"), encoding="utf-8")
    return [md, page]
