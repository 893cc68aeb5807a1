"""The catalogues (appliance/i18n.py): the template holds every caller-facing message the
code has, every offered language translates every one of them with the same
placeholders and markup, and the pseudo-locale is made from the template."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from appliance import i18n

ROOT = Path(__file__).resolve().parents[2]
# What must be the same in a message and its translation: placeholders and tags.
_SHAPE = re.compile(r"%\([a-z_]+\)[sd]|\{[a-z_]+\}|<[^>]+>")


def _extracted() -> set[str]:
    with (ROOT / "babel.cfg").open() as file:
        method_map, options_map = parse_mapping_cfg(file)
    found: set[str] = set()
    for _path, _line, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _ids(catalogue: Catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue if m.id}


def problems(template: Catalog, translated: Catalog) -> list[str]:
    """Each message of ``template`` that ``translated`` lacks, leaves empty or fuzzy, or
    whose placeholders and tags differ from the source's."""
    found: list[str] = []
    for source in template:
        if not source.id:
            continue
        key = source.id if isinstance(source.id, str) else source.id[0]
        message = translated.get(source.id)
        strings = (
            []
            if message is None
            else (list(message.string) if isinstance(message.string, tuple) else [message.string])
        )
        if message is None or message.fuzzy or not strings or not all(strings):
            found.append(f"untranslated: {key}")
            continue
        shape = sorted(_SHAPE.findall(key))
        for string in strings:
            if sorted(_SHAPE.findall(string)) != shape:
                found.append(f"placeholders or tags differ: {key}")
    return found


def test_the_template_holds_every_message_the_code_has() -> None:
    """`make messages` was run after the last change to caller-facing text."""
    assert _extracted() == _ids(i18n.template()), "run `make messages`"


def test_every_offered_language_translates_every_message() -> None:
    for code in i18n.OFFERED:
        if code == i18n.SOURCE:
            continue
        assert problems(i18n.template(), i18n.catalogue(code)) == [], code


def test_the_completeness_check_finds_a_missing_and_a_broken_message() -> None:
    """Tests the test: one message dropped and one placeholder lost are both caught."""
    template = Catalog(locale="en")
    template.add("Video call with %(force_name)s")
    template.add("Continue")
    translated = Catalog(locale="cy")
    translated.add("Video call with %(force_name)s", "Galwad fideo gyda'r heddlu")
    assert problems(template, translated) == [
        "placeholders or tags differ: Video call with %(force_name)s",
        "untranslated: Continue",
    ]


def test_the_pseudo_locale_keeps_placeholders_and_tags() -> None:
    made = i18n.catalogue(i18n.PSEUDO)
    assert problems(i18n.template(), made) == []
    assert i18n.gettext(i18n.PSEUDO, "Continue").startswith(i18n.PSEUDO_OPEN)
    assert i18n.gettext("cy", "Continue") == "Parhau"
    assert i18n.gettext("xx", "Continue") == "Continue"


_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_LITERAL = re.compile(r"(_\(\s*)?([\"'`])((?:(?!\2)[^\\\n]|\\.)*)\2")
_WORDS = re.compile(r"[A-Za-z]{2,} [a-z]{2,}")


def english_outside_catalogue(source: str) -> list[str]:
    """The script's string literals that read as English words but are not ``_()``'s
    argument: text the page would show untranslated."""
    code = _BLOCK_COMMENT.sub("", source)
    found = []
    for line in code.splitlines():
        if line.strip().startswith("//"):
            continue
        for match in _LITERAL.finditer(line):
            text = match.group(3)
            if match.group(1) is None and text != "use strict" and _WORDS.search(text):
                found.append(text)
    return found


def test_the_callers_scripts_show_no_text_outside_the_catalogue() -> None:
    """Every sentence the caller's (and the guest's) scripts show goes through ``_()``, so
    it is in the catalogue and its translation reaches the page; the check finds one
    that does not."""
    scripts = sorted((ROOT / "appliance/static/js/caller").glob("*.js"))
    scripts.append(ROOT / "appliance/static/js/staff/guest.js")
    for script in scripts:
        assert english_outside_catalogue(script.read_text()) == [], script.name
    sample = 'say(_("Sending…"));\n/* "Not shown" */\nnote.textContent = "Call us again";\n'
    assert english_outside_catalogue(sample) == ["Call us again"]
