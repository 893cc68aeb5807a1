"""The caller's language: gettext catalogues for every page, script and message a caller reads.

The source text is British English in the templates, the caller's scripts and the Python
that makes caller-facing text (marked ``N_`` where it is defined, translated where it is
shown). ``pybabel extract -F babel.cfg`` collects it into ``appliance/locale/messages.pot``;
each language's translation is ``appliance/locale/<code>/LC_MESSAGES/messages.po``. The
``.po`` files are the only thing kept: Babel reads them at first use and compiles them in
memory (no ``.mo`` is committed or built), so a translator's edit is live at the next start.

The accessibility statement's facts live in a data file (``appliance/data/accessibility.toml``):
``extract_toml`` puts its wording in the template, and its page shows it through
``translated`` (translated, never %-formatted).

Staff pages stay English, but their templates can take ``_()`` as the caller's do: the
i18n extension is installed in the one Jinja environment and a page without a language
renders English.

``en-XA`` is a pseudo-locale, made here from the template (accented, bracketed and
lengthened English): the tests render every caller page in it and fail on any text that
did not pass through a catalogue. It is never offered to a caller.
"""

from __future__ import annotations

import functools
import gettext as gettext_module
import io
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

import jinja2
from babel.dates import format_date
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
TEMPLATE = LOCALE_DIR / "messages.pot"
SOURCE = "en"
PSEUDO = "en-XA"
# The caller's and the guest's scripts: their messages are the ones sent to the page as JSON.
SCRIPTS = ("appliance/static/js/caller/", "appliance/static/js/staff/guest.js")


@dataclass(frozen=True)
class Language:
    """A language a caller may read: its code (BCP 47, also the catalogue's folder), the
    ``lang`` its pages carry, its own name for itself and whether it runs right to left."""

    code: str
    html_lang: str
    name: str
    rtl: bool = False


LANGUAGES: dict[str, Language] = {
    "en": Language("en", "en-GB", "English"),
    "cy": Language("cy", "cy", "Cymraeg"),
    "ar": Language("ar", "ar", "العربية", rtl=True),
    PSEUDO: Language(PSEUDO, PSEUDO, "Ƥşḗŭḓǿ"),
}
# What a handler may choose for a caller: every language whose catalogue is complete
# (tests/unit/test_i18n.py fails when one misses a message, and start-up checks each one's
# SMS against unsafe_words and sms_max_segments). A force still to have a language
# reviewed (docs/languages.md) takes it out of here.
OFFERED = ("en", "cy", "ar")


def N_(message: str) -> str:
    """Marks text for the catalogue where it is defined; it is translated where shown."""
    return message


def language(code: str | None) -> Language:
    """The language a code names; English for anything unknown."""
    return LANGUAGES.get(code or SOURCE, LANGUAGES[SOURCE])


@functools.cache
def template() -> Catalog:
    with TEMPLATE.open("rb") as file:
        return read_po(file)


@functools.cache
def catalogue(code: str) -> Catalog:
    """The language's catalogue as its translators left it (the pseudo-locale's made)."""
    if code == PSEUDO:
        made = Catalog(locale="en")
        for message in template():
            if isinstance(message.id, str):
                if message.id:
                    made.add(message.id, _pseudo(message.id), locations=message.locations)
            else:
                made.add(message.id, tuple(_pseudo(form) for form in message.id))
        return made
    path = LOCALE_DIR / code / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as file:
        return read_po(file, locale=code.replace("-", "_"))


@functools.cache
def translations(code: str) -> gettext_module.NullTranslations:
    """gettext for one language; English, the source, translates to itself."""
    if code not in LANGUAGES or code == SOURCE:
        return gettext_module.NullTranslations()
    compiled = io.BytesIO()
    write_mo(compiled, catalogue(code))
    compiled.seek(0)
    return gettext_module.GNUTranslations(compiled)


def gettext(code: str | None, message: str) -> str:
    return translations(language(code).code).gettext(message)


def ngettext(code: str | None, singular: str, plural: str, n: int) -> str:
    return translations(language(code).code).ngettext(singular, plural, n)


def translator(code: str | None) -> Callable[[str], str]:
    """``_`` for Python code that writes for one caller (an SMS, the statement's PDF)."""
    return translations(language(code).code).gettext


@functools.cache
def script_messages(code: str) -> dict[str, str]:
    """The caller's scripts' messages, source to translation, sent to the page as JSON
    (caller/base.html): the scripts look their text up in the same catalogue."""
    found: dict[str, str] = {}
    for message in template():
        if isinstance(message.id, str) and message.id and _in_scripts(message.locations):
            found[message.id] = gettext(code, message.id)
    return found


def _in_scripts(locations: Iterable[tuple[str, int | None]]) -> bool:
    return any(path.startswith(SCRIPTS) for path, _line in locations)


@jinja2.pass_context
def _template_gettext(context: jinja2.runtime.Context, message: str) -> str:
    return gettext(context.get("language"), message)


@jinja2.pass_context
def _template_translated(context: jinja2.runtime.Context, text: str) -> str:
    """A data file's text (the accessibility statement's), translated but never formatted:
    ``_()`` would read a "400%" in it as a placeholder."""
    return gettext(context.get("language"), text)


@jinja2.pass_context
def _template_long_date(context: jinja2.runtime.Context, day: date) -> str:
    return long_date(context.get("language"), day)


def long_date(code: str | None, day: date) -> str:
    """A day as "3 December 2026", in the language's month names and digits 0-9 in every
    language (as the SMS and the statement write them, docs/languages.md)."""
    chosen = language(code).code
    return format_date(day, "d MMMM y", locale="en_GB" if chosen in (SOURCE, PSEUDO) else chosen)


@jinja2.pass_context
def _template_ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return ngettext(context.get("language"), singular, plural, n)


def install(environment: jinja2.Environment) -> None:
    """``_``, ``gettext``, ``ngettext`` and ``{% trans %}`` in every template, in the
    language the render's context names (``language``; English without one). Newstyle:
    ``_("... %(name)s", name=x)`` escapes ``x`` and a literal percent sign is ``%%``."""
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        _template_gettext, _template_ngettext, newstyle=True
    )
    environment.globals["translated"] = _template_translated
    environment.filters["translated"] = _template_translated
    environment.globals["long_date"] = _template_long_date


def extract_toml(
    fileobj: IO[bytes], keywords: object, comment_tags: object, options: dict[str, Any]
) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel's extractor for a data file whose text a caller reads (babel.cfg): every
    string, or list of strings, under the keys the ``keys`` option names, at any depth."""
    source = fileobj.read().decode("utf-8")
    lines = source.splitlines()
    wanted = set(str(options.get("keys", "")).split())

    def strings(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in wanted:
                    yield from [value] if isinstance(value, str) else value
                else:
                    yield from strings(value)
        elif isinstance(node, list):
            for item in node:
                yield from strings(item)

    for text in strings(tomllib.loads(source)):
        line = next((n for n, got in enumerate(lines, 1) if text in got), 1)
        yield line, "_", text, []


def page_context(code: str | None) -> dict[str, Any]:
    """What every page's ``<html>`` and scripts need to know of its language."""
    chosen = language(code)
    return {
        "language": chosen.code,
        "html_lang": chosen.html_lang,
        "html_dir": "rtl" if chosen.rtl else "ltr",
    }


# -- the pseudo-locale --------------------------------------------------------------------

_ACCENTED = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "ȧƀƈḓḗƒɠħīĵķŀḿƞǿƥɋřşŧŭṽẇẋẏẑȦƁƇḒḖƑƓĦĪĴĶĿḾȠǾƤɊŘŞŦŬṼẆẊẎẐ",
)
# What must survive as written: placeholders (%(x)s, %s, %%, {x}), tags and entities.
_KEEP = re.compile(r"%\([a-z_]+\)[sd]|%[sd%]|\{[a-z_]*\}|<[^>]*>|&[a-z#0-9]+;")
PSEUDO_OPEN, PSEUDO_CLOSE = "⟦", "⟧"


def _pseudo(message: str) -> str:
    """Accented, bracketed, about a third longer: shows untranslated text, clipped text
    and text pieced together from fragments at a glance."""
    out: list[str] = []
    last = 0
    for match in _KEEP.finditer(message):
        out.append(message[last : match.start()].translate(_ACCENTED))
        out.append(match.group())
        last = match.end()
    out.append(message[last:].translate(_ACCENTED))
    padding = "·" * (len(message) // 3)
    return f"{PSEUDO_OPEN}{''.join(out)}{padding}{PSEUDO_CLOSE}"
