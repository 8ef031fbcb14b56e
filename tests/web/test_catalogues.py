"""The message catalogues: same keys in every language, no empty text, every key used exists.

Keys are used by the markup (``data-i18n="k"``, ``data-i18n-<attribute>="k"``) and by the
scripts (``t("k", ...)`` with a literal key, ``key("k")`` for a key looked up later). A key
built at run time would escape this check, so the scripts never build one.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from renkei.cloud.api.web import STATIC_DIR

LANGS = ("en", "ja")
HTML = STATIC_DIR / "index.html"
SCRIPTS = sorted((STATIC_DIR / "js").rglob("*.js"))

_HTML_KEY = re.compile(r'\bdata-i18n(?:-[a-z-]+)?="([^"]*)"')
_JS_KEY = re.compile(r"""\b(?:t|key)\(\s*(["'`])(.*?)\1""")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalogue(lang: str) -> dict[str, str]:
    data = json.loads((STATIC_DIR / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def used_keys() -> dict[str, list[str]]:
    """Every key the page uses -> where (file names)."""
    where: dict[str, list[str]] = {}
    for k in _HTML_KEY.findall(HTML.read_text(encoding="utf-8")):
        where.setdefault(k, []).append(HTML.name)
    for path in SCRIPTS:
        for quote, k in _JS_KEY.findall(path.read_text(encoding="utf-8")):
            assert quote != "`" and "${" not in k, f"{path.name}: key built at run time: {k!r}"
            where.setdefault(k, []).append(str(path.relative_to(STATIC_DIR)))
    return where


def test_scripts_are_found() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"app.js", "i18n.js", "api.js", "search.js", "takeovers.js", "assignments.js"} <= names


@pytest.mark.parametrize("lang", LANGS)
def test_catalogue_values_are_non_empty_strings(lang: str) -> None:
    for k, v in catalogue(lang).items():
        assert isinstance(v, str), (lang, k)
        assert v.strip(), f"{lang}.json: empty text for {k!r}"
        assert v == v.strip(), f"{lang}.json: {k!r} has leading/trailing blanks"


def test_catalogues_have_exactly_the_same_keys() -> None:
    en, ja = set(catalogue("en")), set(catalogue("ja"))
    assert en - ja == set(), "keys missing in ja.json"
    assert ja - en == set(), "keys missing in en.json"


def test_catalogues_use_the_same_placeholders() -> None:
    en, ja = catalogue("en"), catalogue("ja")
    for k in en:
        assert set(_PLACEHOLDER.findall(en[k])) == set(_PLACEHOLDER.findall(ja[k])), k


def test_every_key_used_exists_in_every_catalogue() -> None:
    used = used_keys()
    assert len(used) > 100  # the grep works
    for lang in LANGS:
        missing = {k: where for k, where in used.items() if k not in catalogue(lang)}
        assert missing == {}, f"keys used but missing in {lang}.json"


def test_every_catalogue_key_is_used() -> None:
    unused = set(catalogue("en")) - set(used_keys())
    assert unused == set(), "catalogue keys no markup or script uses"


def test_japanese_catalogue_is_japanese() -> None:
    """Each Japanese text differs from the English one unless it has no words to translate."""
    en, ja = catalogue("en"), catalogue("ja")
    same = {k for k in en if en[k] == ja[k]}
    # brand names read the same in both languages
    brands = {"notify.channel.line", "notify.channel.slack"}
    assert same <= {"auth.key_placeholder", "unit.km", *brands}, same


class _TextCheck(HTMLParser):
    """Collects text of index.html that is not under an element with ``data-i18n``."""

    VOID = frozenset({"meta", "link", "input", "br", "img", "hr", "source", "col", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []
        self.untranslated: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        translated = any(name == "data-i18n" for name, _ in attrs)
        self.stack.append((tag, translated))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            open_tag, _ = self.stack.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        text = data.strip()
        if not text or not self.stack:
            return
        tag, translated = self.stack[-1]
        if tag in ("script", "style") or translated:
            return
        self.untranslated.append(f"<{tag}>{text}")


def test_every_visible_text_of_the_markup_comes_from_the_catalogue() -> None:
    check = _TextCheck()
    check.feed(HTML.read_text(encoding="utf-8"))
    assert check.untranslated == []


def test_js_modules_use_no_inner_html() -> None:
    """API data is set as text only (no HTML injection through firm or part names)."""
    for path in SCRIPTS:
        src = path.read_text(encoding="utf-8")
        for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert bad not in src, f"{path.name} uses {bad}"


def test_static_files_are_plain_and_local() -> None:
    """No build step and no CDN: every reference is relative or to this origin."""
    for path in [HTML, *SCRIPTS, *sorted((STATIC_DIR / "css").glob("*.css"))]:
        src = path.read_text(encoding="utf-8")
        assert not re.search(
            r"""(?:src|href|from|import|url\()\s*=?\s*["'(]?(?:https?:)?//""", src
        ), path.name
    assert Path(STATIC_DIR / "i18n").is_dir()
