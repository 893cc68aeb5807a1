"""How many SMS parts a text costs: GSM 03.38's 7-bit alphabet, or UCS-2 for anything else.

A text that fits the GSM-7 alphabet (with its escaped extension characters, which count
twice) goes as 160 characters in one part, or 153 a part once split; one character outside
it (Welsh ŵ and ŷ, Arabic script, most emoji) sends the whole text as UCS-2: 70 in one
part, 67 a part once split, counted in UTF-16 code units (an emoji counts two). Networks
and GOV.UK Notify bill and deliver by these parts, so the outbox shows them and start-up
refuses a template that would need more than ``sms_max_segments`` (appliance/config).
"""

from __future__ import annotations

from dataclasses import dataclass

# GSM 03.38 default alphabet (one septet each) and its extension table (two: ESC + char).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7, UCS2 = "GSM-7", "UCS-2"
# Characters in one part, and in each part of a split message, by encoding.
SINGLE = {GSM7: 160, UCS2: 70}
SPLIT = {GSM7: 153, UCS2: 67}


@dataclass(frozen=True)
class Length:
    """A text's encoding, its length in that encoding's units and the parts it needs."""

    encoding: str
    units: int
    segments: int


def length(text: str) -> Length:
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        encoding = GSM7
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
    else:
        encoding = UCS2
        units = len(text.encode("utf-16-le")) // 2
    if units <= SINGLE[encoding]:
        return Length(encoding, units, 1 if units else 0)
    return Length(encoding, units, -(-units // SPLIT[encoding]))
