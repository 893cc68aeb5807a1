"""Reading a caller's page for its language: the text a person sees (and a screen reader
reads), and what of it did not pass through a catalogue (appliance/i18n.py)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from appliance import i18n

# Attributes a person reads or hears as text.
SPOKEN_ATTRIBUTES = ("placeholder", "aria-label", "title", "alt")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_BRACKETED = re.compile(
    f"{i18n.PSEUDO_OPEN}[^{i18n.PSEUDO_OPEN}{i18n.PSEUDO_CLOSE}]*{i18n.PSEUDO_CLOSE}"
)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.scripts: dict[str, str] = {}
        self._skip = 0
        self._script_id = ""
        self.html_attrs: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.html_attrs = values
        if tag in ("script", "style"):
            self._skip += 1
            self._script_id = values.get("id") or ""
        for name in SPOKEN_ATTRIBUTES:
            if values.get(name):
                self.parts.append(f"\n{values[name]}\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
            self._script_id = ""

    def handle_data(self, data: str) -> None:
        if self._skip:
            if self._script_id:
                self.scripts[self._script_id] = self.scripts.get(self._script_id, "") + data
            return
        self.parts.append(data)


def read(page: str) -> _Text:
    parser = _Text()
    parser.feed(page)
    parser.close()
    return parser


def untranslated(page: str, data: tuple[str, ...] = ()) -> list[str]:
    """The Latin words a pseudo-locale page shows outside any translated message, once
    the ``data`` it shows as given (names, references, the operator's settings) are taken
    out: each one is text that never went through the catalogue."""
    text = "".join(read(page).parts)
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    while (shorter := _BRACKETED.sub(" ", text)) != text:
        text = shorter
    return _LATIN_WORD.findall(text)


def script_messages(page: str) -> dict[str, str]:
    """The messages the page gave its scripts (#evr-messages)."""
    found: dict[str, str] = json.loads(read(page).scripts["evr-messages"])
    return found


def english_shown(text: str, language: str, data: tuple[str, ...] = ()) -> list[str]:
    """Each catalogue message whose English source ``text`` (a page's words, as read by
    :func:`read` or a browser's ``innerText``) shows outside ``data`` where ``language``'s
    translation differs from it ("Safari" reads the same in both)."""
    text = " ".join(text.split())
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(" ".join(value.split()), " ")
    return [
        message.id
        for message in i18n.template()
        if isinstance(message.id, str)
        and len(message.id) > 3
        and i18n.gettext(language, message.id) != message.id
        and message.id in text
    ]


# What a person sees of a page in the browser, or hears of it: the rendered text of what is
# shown (innerText leaves out what is hidden) and the spoken attributes of what is shown.
SHOWN_TEXT = (
    """() => [document.title, document.body.innerText,
    ...[...document.querySelectorAll("body *")]
        .filter((e) => e.getClientRects().length > 0)
        .flatMap((e) => """
    + repr(list(SPOKEN_ATTRIBUTES))
    + """.map((a) => e.getAttribute(a) || ""))].join("\\n")"""
)
