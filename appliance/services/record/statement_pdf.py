"""The signed statement as a PDF (fpdf2): the witness's details, the account, the
declaration, the signature (the drawn image, or a line saying the caller signed by typing
their name and ticked the confirmation), the typed name, the time and the content hash.

DejaVu Sans (Debian's fonts-dejavu-core) is embedded so any name or account in any
script prints as typed; without it the core Helvetica font is used and characters it
cannot show are replaced, which the stored text in the database never is.
"""

from __future__ import annotations

import io
from pathlib import Path
from zoneinfo import ZoneInfo

from fpdf import FPDF

from appliance.models import Incident, Statement

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
LONDON = ZoneInfo("Europe/London")


def _pdf() -> tuple[FPDF, str, bool]:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=18)
    regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
    if regular.exists() and bold.exists():
        pdf.add_font("DejaVu", "", str(regular))
        pdf.add_font("DejaVu", "B", str(bold))
        return pdf, "DejaVu", True
    return pdf, "Helvetica", False


def render(
    statement: Statement,
    incident: Incident,
    signature_png: bytes | None,
    officer: str,
    typed_confirmation: str = "",
) -> bytes:
    pdf, family, unicode_font = _pdf()

    def text(value: str) -> str:
        return value if unicode_font else value.encode("latin-1", "replace").decode("latin-1")

    assert statement.signed_at is not None
    signed_local = statement.signed_at.astimezone(LONDON)
    pdf.set_title(f"Witness statement {incident.cad_reference} v{statement.version}")
    pdf.set_author(text(statement.signed_name))
    pdf.set_creator("EVR appliance")
    pdf.add_page()
    pdf.set_font(family, "B", 15)
    pdf.cell(0, 9, "WITNESS STATEMENT", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 9)
    pdf.cell(
        0,
        5,
        text(f"Incident {incident.cad_reference} · version {statement.version} · MG11-style"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(3)

    rows = [
        ("Statement of", statement.witness_name),
        ("Age if under 18", statement.witness_age or "Over 18"),
        ("Occupation", statement.witness_occupation or "-"),
        ("Taken by", officer or "-"),
    ]
    for label, value in rows:
        pdf.set_font(family, "B", 10)
        pdf.cell(40, 6, label)
        pdf.set_font(family, "", 10)
        pdf.multi_cell(0, 6, text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(family, "B", 10)
    pdf.cell(0, 6, "Declaration", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 9)
    pdf.multi_cell(0, 5, text(statement.declaration), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(family, "B", 10)
    pdf.cell(0, 6, "Account", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    pdf.multi_cell(0, 5.5, text(statement.account), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    pdf.set_font(family, "B", 10)
    pdf.cell(0, 6, "Signed", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    if signature_png is None:
        pdf.multi_cell(
            0,
            6,
            text(
                f'Signed by typing the name "{statement.signed_name}", confirmed by the '
                f'witness ticking: "{typed_confirmation}" No signature was drawn.'
            ),
            new_x="LMARGIN",
            new_y="NEXT",
        )
    else:
        pdf.image(io.BytesIO(signature_png), w=70)
        pdf.cell(0, 6, "Signature drawn by the witness (above).", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, text(f"Name: {statement.signed_name}"), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(
        0,
        6,
        f"Signed at: {signed_local:%d %B %Y %H:%M:%S} UK time "
        f"({statement.signed_at:%Y-%m-%dT%H:%M:%SZ})",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    pdf.set_font(family, "", 8)
    pdf.multi_cell(
        0,
        4,
        "Content SHA-256 (the statement's fields and the signature image, as set out in "
        f"the appliance's docs/statements.md): {statement.content_sha256}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(pdf.output())
