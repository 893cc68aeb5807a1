"""The signed statement as a PDF (fpdf2): the witness's details, the account, the
declaration, the signature (the drawn image, or a line saying the caller signed by typing
their name and ticked the confirmation), the typed name, the time and the content hash.

DejaVu Sans (Debian's fonts-dejavu-core) is embedded so any name or account in any
script prints as typed; without it the core Helvetica font is used and characters it
cannot show are replaced, which the stored text in the database never is.

Right-to-left and joined scripts (Arabic) are set by HarfBuzz (``uharfbuzz``, through
fpdf2's ``set_text_shaping``): without it fpdf2 still runs the bidi algorithm but prints
each Arabic letter in its isolated form, unjoined, and a PDF reader extracts the words
backwards. Shaping costs CPU (an Arabic statement's render took 0.26 s unshaped, 0.39 s
shaped), so it is switched on only for a statement in a right-to-left language or holding
such text; Latin (English, Welsh) is set exactly as before.

Its fixed text is in the language the witness read the statement in (``statement.language``,
appliance/i18n.py), and it says which: the page, the declaration and the PDF agree.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from fpdf import FPDF

from appliance import i18n
from appliance.models import Incident, Statement

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
LONDON = ZoneInfo("Europe/London")


def _needs_shaping(texts: Iterable[str]) -> bool:
    """Whether any text is in a script that HarfBuzz must set: right to left (Arabic,
    Hebrew: their letters join or reorder) or carrying combining marks (Indic scripts)."""
    return any(
        unicodedata.bidirectional(c) in ("R", "AL") or unicodedata.category(c) in ("Mn", "Mc")
        for text in texts
        for c in text
    )


def _pdf(shaped: bool) -> tuple[FPDF, str, bool]:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=18)
    regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
    if regular.exists() and bold.exists():
        pdf.add_font("DejaVu", "", str(regular))
        pdf.add_font("DejaVu", "B", str(bold))
        pdf.set_text_shaping(shaped)
        return pdf, "DejaVu", True
    return pdf, "Helvetica", False


def render(
    statement: Statement,
    incident: Incident,
    signature_png: bytes | None,
    officer: str,
    typed_confirmation: str = "",
) -> bytes:
    language = i18n.language(statement.language)
    _ = i18n.translator(language.code)
    written = (statement.witness_name, statement.signed_name, statement.account, officer)
    pdf, family, unicode_font = _pdf(language.rtl or _needs_shaping(written))

    def text(value: str) -> str:
        return value if unicode_font else value.encode("latin-1", "replace").decode("latin-1")

    assert statement.signed_at is not None
    signed_local = statement.signed_at.astimezone(LONDON)
    pdf.set_title(f"Witness statement {incident.cad_reference} v{statement.version}")
    pdf.set_author(text(statement.signed_name))
    pdf.set_creator("EVR appliance")
    pdf.add_page()
    pdf.set_font(family, "B", 15)
    pdf.cell(0, 9, text(_("WITNESS STATEMENT")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 9)
    heading = _("Incident %(reference)s · version %(version)s · MG11-style") % {
        "reference": incident.cad_reference,
        "version": statement.version,
    }
    pdf.cell(0, 5, text(heading), new_x="LMARGIN", new_y="NEXT")
    # Always in English as well: whoever reads the PDF in court learns what was read.
    read_in = f"{language.name} ({language.code})"
    pdf.cell(
        0,
        5,
        text(_("Read and signed in: %(language)s") % {"language": read_in})
        + ("" if language.code == i18n.SOURCE else f" / Read and signed in: {read_in}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(3)

    rows = [
        (_("Statement of"), statement.witness_name),
        (_("Age if under 18"), statement.witness_age or _("Over 18")),
        (_("Occupation"), statement.witness_occupation or "-"),
        (_("Taken by"), officer or "-"),
    ]
    for label, value in rows:
        pdf.set_font(family, "B", 10)
        pdf.cell(40, 6, text(label))
        pdf.set_font(family, "", 10)
        pdf.multi_cell(0, 6, text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(family, "B", 10)
    pdf.cell(0, 6, text(_("Declaration")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 9)
    pdf.multi_cell(0, 5, text(statement.declaration), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(family, "B", 10)
    pdf.cell(0, 6, text(_("Account")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    pdf.multi_cell(0, 5.5, text(statement.account), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    pdf.set_font(family, "B", 10)
    pdf.cell(0, 6, text(_("Signed")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    if signature_png is None:
        typed = _(
            'Signed by typing the name "%(name)s", confirmed by the witness ticking: '
            '"%(confirmation)s" No signature was drawn.'
        ) % {"name": statement.signed_name, "confirmation": _(typed_confirmation)}
        pdf.multi_cell(0, 6, text(typed), new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.image(io.BytesIO(signature_png), w=70)
        drawn = _("Signature drawn by the witness (above).")
        pdf.cell(0, 6, text(drawn), new_x="LMARGIN", new_y="NEXT")
    name = _("Name: %(name)s") % {"name": statement.signed_name}
    pdf.cell(0, 6, text(name), new_x="LMARGIN", new_y="NEXT")
    local = format_datetime(signed_local, "d MMMM y HH:mm:ss", locale=_babel_locale(language))
    signed = _("Signed at: %(local)s UK time (%(utc)s)") % {
        "local": local,
        "utc": f"{statement.signed_at:%Y-%m-%dT%H:%M:%SZ}",
    }
    pdf.cell(0, 6, text(signed), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(family, "", 8)
    pdf.multi_cell(
        0,
        4,
        text(
            _(
                "Content SHA-256 (the statement's fields and the signature image, as set out "
                "in the appliance's docs/statements.md): %(hash)s"
            )
            % {"hash": statement.content_sha256}
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(pdf.output())


def _babel_locale(language: i18n.Language) -> str:
    """Babel's name for the language's dates (month names); the pseudo-locale's is English."""
    return "en_GB" if language.code in (i18n.SOURCE, i18n.PSEUDO) else language.code
