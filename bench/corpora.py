"""Labelled evaluation sets built reproducibly from Debian documentation packages.

Nothing here is committed data: each builder fetches a Debian package on demand with
`apt-get download NAME` (no root needed), unpacks it with `dpkg-deb -x` into a cache
directory (`$PROTOMESH_BENCH_CACHE`, else `~/.cache/protomesh-bench`) as `CACHE/NAME/`,
and records the .deb's file name, version and sha256 in `CACHE/NAME/PROVENANCE.json`.
An unpacked tree is reused as is; delete it to fetch again. The sets depend only on the
package version (recorded) and the seed.

Retrieval set "pydoc-sections" (package `python3.11-doc`, `pydoc_sections`)
    Source: the reST sources Sphinx ships, `usr/share/doc/python3.11/html/_sources/**/*.rst.txt`
    (except `whatsnew/changelog`, `license` and `includes/`), in path order. A page's title
    is its first reST section heading; every later heading (a line of text followed by an
    underline, with or without a matching overline, of one repeated punctuation character
    at least as long as the text) starts a section that runs to the next heading of any
    level; the text between the page title and its first section is not used. Each
    section gives one document — title: the page title; content: the section's body
    without its heading — and one query: the heading. Only sections whose heading has at
    least 2 words and whose body has at least 200 characters are kept; generic headings
    ("Examples", "Notes", "See also", "Introduction", "Overview", ...) and every heading
    text (compared case-insensitively) that occurs more than once anywhere in the
    documentation (page titles included) are dropped, so a query names exactly one
    section. The only relevant document of a query is its own section; its key is
    `PATH#slug-of-heading`, e.g. `library/logging.rst#logger-objects`.
    Markup is stripped: roles become their text (:func:`~os.path.join` → join,
    :pep:`8` → PEP 8, :issue:`123` → bpo-123, `text <target>` → text); ``literals``,
    *emphasis* and **strong** lose their markers, footnote references go; object
    directives keep their signature (`.. function:: name(args)` → `name(args)`), version
    directives become Sphinx's wording ("New in version 3.2."), admonitions keep their
    content; literal blocks (after `::`, code-block/doctest directives, `>>>` paragraphs)
    are kept verbatim; `.. index::`, `.. toctree::`, comments, labels, directive options,
    `.. module::`/author/include/image directives and table borders are dropped.
    `retrieval_set` draws the corpus from the sections and then the queries from the
    corpus with one `random.Random(seed)`.

Answer set "pgdoc-qa" (package `postgresql-doc-15`, `pgdoc_qa`)
    Source: the DocBook HTML under `usr/share/doc/postgresql-doc-15/html/*.html`
    (except release notes and the index), in file-name order, parsed with the standard
    library's html.parser. Every chapter, appendix, `sect1`..`sect5`, `simplesect`,
    reference page (`refentry`) and `refsect1`..`refsect3` element is a section: its
    heading is its first h1..h6 (numbers like "5.4.1." removed), its body the text
    directly inside it (nested sections, navigation, tables of contents and footnotes
    excluded), one paragraph per block element, whitespace collapsed except in <pre>
    (which keeps its lines). Its key is `FILE#ID` (the element's id), its page title the
    HTML <title> without its number. Sections with bodies of 200..20,000 characters are
    eligible; a corpus document is title: page title, content: body.
    Questions. Sentences are split from the single-line (prose) paragraphs of a body at
    ". ", "? ", "! " before a capital letter, except after "e.g.", "i.e." and similar.
    A sentence of 40..400 characters that starts with a letter or digit and ends in "."
    gives a question if it starts with a SUBJECT of 1..6 words followed by:
        "is a|an|the|one ..."                → "What is SUBJECT?"
        "are a|an|the|one ..."               → "What are SUBJECT?"
        "is|are used to|for ..."             → "What is|are SUBJECT used for?"
        "can be used to|for ..."             → "What can SUBJECT be used for?"
        "provides|returns|allows|supports|controls|specifies|determines|contains|
         creates|defines|removes|changes ..." → "What does SUBJECT provide|return|...?"
        "provide|return|... ..." (plural)    → "What do SUBJECT provide|return|...?"
    with at least 3 words after the verb. The SUBJECT must not contain commas, colons,
    brackets or quotes; must not start with a pronoun, conjunction, adverb or a
    cross-reference word ("This", "It", "If", "However", "Section", "Table", ...); must not
    contain, after its first word, a stop word other than "the", "a", "an", "of", "and",
    nor a modal verb or adverb ("will", "must", "automatically", ...), nor anywhere a word
    pointing at context ("following", "above", "same", ...); must have at least 2 content
    words that are not vague ("first", "optional", "value", ...); and must agree with the
    verb (a plain lower-case last word ending in -s takes only the plural form, any
    other only the -s form). In the question, a Capitalized first word of the subject is
    lowered ("The" → "the"); acronyms and identifiers are kept. The first sentence of a
    section that gives a question wins. A section with none whose heading is task-like
    (its first word ends in "ing" and is not "String", "During", ...) gives
    "How do I go about <heading>?" (Title Case words lowered, e.g. "Creating a Database"
    → "How do I go about creating a database?"), supported by the body's first sentence
    that meets the length and ending rules above. Every question needs at least 2 content
    words (words of 2+ characters outside a fixed English stop-word list) and must not be
    a substring of its sentence. Questions whose text comes from more than one eligible
    section, and those whose support sentence occurs in more than one eligible section
    (boilerplate), are dropped. `support` is the sentence verbatim as it appears in the
    ingested body; a section gives at most one question.
    Corpus: `answerable` sections are drawn with `random.Random(seed)` from the eligible
    sections that give a question, then `sections - answerable` more from the other
    eligible sections, with the same generator; the corpus is returned in source order.
    The answerable items (key `a:SECTION_KEY`) are those of the first draw, by section key.
    Unanswerable questions come from the fixed list `UNANSWERABLE` (topics absent from the
    PostgreSQL documentation: Kubernetes, React, Rust, baking, Roman history, ...). A crude
    check drops any of them with two content words that occur next to each other (stop
    words removed) anywhere in the parsed PostgreSQL documentation (title, heading or
    body of any section, eligible or not); then `unanswerable` of the rest are drawn with
    the same generator (key `u:NNN`, NNN = index in `UNANSWERABLE`).

    .venv/bin/python -m bench.corpora [--seed 7]   # prints a JSON summary
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from services.platform.config import Settings

PYDOC_PACKAGE = "python3.11-doc"
PGDOC_PACKAGE = "postgresql-doc-15"
MIN_BODY = 200
MAX_PG_BODY = 20_000


# --------------------------------------------------------------------------- fetching


def default_cache() -> Path:
    """`$PROTOMESH_BENCH_CACHE`, else `~/.cache/protomesh-bench` (the settings tree's)."""
    return Settings.from_env().bench.cache.expanduser()


def fetch_package(name: str, cache: Path) -> Path:
    """`cache/NAME/`: the unpacked .deb of Debian package NAME, fetched once.

    Runs `apt-get download NAME` in a temporary directory inside `cache`, unpacks the .deb
    with `dpkg-deb -x` and writes `PROVENANCE.json` (package, deb file name, version,
    sha256) last, so a tree without it is incomplete and fetched again.
    """
    target = cache / name
    if (target / "PROVENANCE.json").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=f".fetch-{name}-") as tmp:
        work = Path(tmp)
        _run(["apt-get", "download", name], cwd=work)
        debs = sorted(work.glob("*.deb"))
        if len(debs) != 1:
            raise RuntimeError(f"`apt-get download {name}` left {len(debs)} .deb files")
        deb = debs[0]
        tree = work / "tree"
        _run(["dpkg-deb", "-x", str(deb), str(tree)], cwd=work)
        version = _run(["dpkg-deb", "-f", str(deb), "Version"], cwd=work).strip()
        record = {
            "package": name,
            "deb": deb.name,
            "version": version,
            "sha256": hashlib.sha256(deb.read_bytes()).hexdigest(),
        }
        (tree / "PROVENANCE.json").write_text(json.dumps(record, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        tree.rename(target)
    return target


def provenance(tree: Path) -> dict[str, str]:
    """The PROVENANCE.json `fetch_package` wrote into an unpacked tree."""
    data: dict[str, str] = json.loads((tree / "PROVENANCE.json").read_text())
    return data


def _run(command: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise RuntimeError(f"`{' '.join(command)}` failed: {error}") from error
    if done.returncode != 0:
        hint = " (run `apt-get update` once?)" if command[:2] == ["apt-get", "download"] else ""
        raise RuntimeError(
            f"`{' '.join(command)}` failed with exit status {done.returncode}{hint}: "
            f"{done.stderr.strip()}"
        )
    return done.stdout


# --------------------------------------------------------------------------- shared


@dataclass(frozen=True)
class Section:
    """One document: `page_title` is its title, `body` its content; `heading` is the
    section's own heading (the query in "pydoc-sections"), not part of the body."""

    key: str
    page_title: str
    heading: str
    body: str


@dataclass(frozen=True)
class QaItem:
    """A question; `support` is the body sentence that answers it and `section_key` its
    section (both empty for unanswerable questions)."""

    key: str
    question: str
    support: str
    section_key: str
    answerable: bool


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _phrases(text: str) -> frozenset[str]:
    return frozenset(" ".join(phrase.split()) for phrase in text.split("|"))


STOP_WORDS = _words(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    either else etc few for from further had has have having he her here hers him his how
    i if in into is it its itself just may me might more most must my no nor not now of
    off on once only or other our ours out over own per same shall she should so some such
    than that the their theirs them then there these they this those through thus to too
    under until up upon us very via was we were what when where which while who whom why
    will with within without would you your yours go about"""
)
_WORD = re.compile(r"[a-z0-9][a-z0-9_+#'-]*")


def content_words(text: str) -> list[str]:
    """Lower-cased words of 2+ characters that are not stop words, in order."""
    words = (w.strip("'-") for w in _WORD.findall(text.lower()))
    return [w for w in words if len(w) >= 2 and w not in STOP_WORDS]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


# --------------------------------------------------------------------------- reST (pydoc)

ADORNMENT_CHARS = "=-`:'\"~^_*+#<>.!$%&,/;?@[]\\{|}"
GENERIC_HEADINGS = _phrases(
    """examples|example|notes|note|see also|introduction|overview|footnotes|summary|
    background|usage|example usage|usage examples|further reading|basic usage|other functions|
    acknowledgements|acknowledgments|table of contents|references|contents|functions|classes|
    constants|exceptions|methods|attributes|reference|quick start|getting started|tutorial|
    api reference|module contents"""
)
PYDOC_EXCLUDED = ("whatsnew/changelog.rst", "license.rst", "includes/")

# Directives dropped with their content.
_DROP_DIRECTIVES = _words(
    """index toctree module moduleauthor sectionauthor highlight include literalinclude
    image figure tabularcolumns testsetup testcleanup contents currentmodule program
    audit-event raw miscnews limited-api-list sidebar rubric default-role role
    c:namespace"""
)
# Object directives whose argument (the signature) is kept as text.
_SIGNATURE_DIRECTIVES = _words(
    """function method attribute data class exception cmdoption option opcode envvar
    decorator decoratormethod coroutinemethod coroutinefunction classmethod staticmethod
    abstractmethod awaitablefunction awaitablemethod describe object pdbcommand
    productionlist topic 2to3fixer"""
)
# Directives whose content is literal text (kept without inline markup processing).
_LITERAL_DIRECTIVES = _words(
    "code-block sourcecode code doctest testcode testoutput productionlist literalinclude"
)
_VERSION_DIRECTIVES = {
    "versionadded": "New in version {}.",
    "versionchanged": "Changed in version {}:",
    "deprecated": "Deprecated since version {}.",
}
_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\.\s+(?P<name>[\w:-]+)::\s*(?P<argument>.*)$")
_EXPLICIT = re.compile(r"^(?P<indent>\s*)\.\.(?:\s|$)(?P<rest>.*)$")
_OPTION = re.compile(r"^\s*:[\w -]+:(\s.*)?$")
_TABLE_BORDER = re.compile(r"^\s*[-=+|: ]{3,}\s*$")


def _role_text(role: str, content: str) -> str:
    content = content.strip()
    target = re.fullmatch(r"(?s)(.*?)\s*<([^<>]+)>", content)
    if target and target[1]:
        return target[1]
    if target:
        content = target[2]
    content = content.lstrip("!")
    if content.startswith("~"):
        content = content[1:].rsplit(".", 1)[-1]
    prefix = {"pep": "PEP ", "rfc": "RFC ", "issue": "bpo-", "gh": "gh-"}.get(role.lower(), "")
    return prefix + content


# reST inline markup starts after whitespace or one of '"([{<-/: and ends before
# whitespace or one of '")]}>-/:.,;!? (docutils' recognition rules, simplified).
_BEFORE = r"(?<![^\s'\"(\[{<\-/:])"
_AFTER = r"(?![^\s'\")\]}>\-/:.,;!?\\])"
_LAZY = r"(?:(?!\n\s*\n).)*?"  # as few characters as possible, within one paragraph
_INLINE = re.compile(
    rf"(?P<role_markup>:(?:[\w.-]+:)*(?P<role>[\w.-]+):`(?P<role_content>[^`]+)`)"
    rf"|{_BEFORE}``(?P<literal>\S{_LAZY})(?<=\S)``{_AFTER}"
    rf"|{_BEFORE}`(?P<ref_text>[^`<]+?)\s*<[^`>]+>`__?{_AFTER}"
    rf"|{_BEFORE}`(?P<interpreted>[^`]+)`(?:__?)?{_AFTER}"
    rf"|{_BEFORE}\*\*(?P<strong>\S{_LAZY})(?<=\S)\*\*{_AFTER}"
    rf"|{_BEFORE}\*(?P<emphasis>[^\s*]{_LAZY})(?<=[^\s*])\*{_AFTER}"
    rf"|{_BEFORE}\|(?P<substitution>\w[\w -]*)\|{_AFTER}"
    r"|(?P<footnote_ref>(?: |(?<!\S))\[(?:#[\w-]*|\*|\d+)\]_)"
    r"|\\(?P<escaped>.)",
    re.DOTALL,
)


def _inline_text(match: re.Match[str]) -> str:
    if match["role_markup"]:
        return _role_text(match["role"], match["role_content"])
    if match["footnote_ref"]:
        return ""
    if match["escaped"] is not None:
        return "" if match["escaped"].isspace() else match["escaped"]
    for group in ("literal", "ref_text", "interpreted", "strong", "emphasis", "substitution"):
        if match[group] is not None:
            return match[group]
    return match[0]


def strip_inline(text: str) -> str:
    """reST inline markup → plain text: roles (:func:`~a.b` → b, :pep:`8` → PEP 8,
    `text <target>` → text), ``literals``, references, *emphasis*, **strong**, |subst|,
    footnote references ([#]_ → nothing), backslash escapes. One left-to-right pass, so
    a literal's content is never reinterpreted; markup may span lines."""
    return _INLINE.sub(_inline_text, text)


def _is_adornment(line: str) -> bool:
    stripped = line.rstrip()
    return (
        len(stripped) >= 3
        and stripped[0] in ADORNMENT_CHARS
        and stripped == stripped[0] * len(stripped)
    )


def _headings(lines: Sequence[str]) -> Iterator[tuple[int, int, int]]:
    """(first line, text line, last line) of every section heading, in order."""
    i = 0
    while i + 1 < len(lines):
        text, under = lines[i], lines[i + 1]
        overline = i > 0 and _is_adornment(under) and lines[i - 1].rstrip() == under.rstrip()
        if (
            text.strip()
            and (overline or not text[0].isspace())  # only an overlined title is indented
            and (overline or i == 0 or not lines[i - 1].strip())
            and not _is_adornment(text)
            and _is_adornment(under)
            and len(under.rstrip()) >= len(text.rstrip())
        ):
            yield (i - 1 if overline else i), i, i + 1
            i += 2
            continue
        i += 1


def _clean_rest(lines: Sequence[str]) -> str:
    """Directive/comment handling, inline markup stripping outside literal blocks;
    dedented, runs of blank lines collapsed."""
    out: list[tuple[str, bool]] = []  # (line, literal)
    skip_indent: int | None = None  # dropping a block: lines indented deeper than this
    literal_indent: int | None = None  # in a literal block: lines indented deeper than this
    in_options = False  # right after a directive line: its `:option:` lines
    doctest = False  # in a paragraph that starts with >>>
    previous_blank = True
    for raw in lines:
        line = raw.rstrip()
        indent = len(line) - len(line.lstrip())
        blank, after_blank, previous_blank = not line, previous_blank, not line
        if skip_indent is not None:
            if blank or indent > skip_indent:
                continue
            skip_indent = None
        if in_options:
            if not blank and _OPTION.match(line):
                continue
            in_options = False
        if literal_indent is not None:
            if blank or indent > literal_indent:
                out.append((line, True))
                continue
            literal_indent = None
        if doctest or (line.lstrip().startswith(">>>") and after_blank):
            doctest = not blank
            out.append((line, True))
            continue
        directive = _DIRECTIVE.match(line)
        if directive:
            name, argument = directive["name"], directive["argument"].strip()
            short = name.split(":")[-1]
            pad = directive["indent"]
            if name in _DROP_DIRECTIVES or short in _DROP_DIRECTIVES:
                skip_indent = indent
                continue
            in_options = True
            if short in _LITERAL_DIRECTIVES:
                literal_indent = indent
            elif short in _VERSION_DIRECTIVES:
                version, _, rest = argument.partition(" ")
                out.append(
                    (pad + " ".join([_VERSION_DIRECTIVES[short].format(version), rest]), False)
                )
            elif short == "deprecated-removed":
                parts = [*argument.split(" ", 2), "", ""]
                text = f"Deprecated since version {parts[0]}, will be removed in version "
                out.append((pad + f"{text}{parts[1]}. {parts[2]}".rstrip(), False))
            elif short == "availability":
                out.append((pad + f"Availability: {argument}", False))
            elif (name.startswith("c:") or short in _SIGNATURE_DIRECTIVES) and argument:
                out.append((pad + argument, True))  # a signature: no inline markup
            continue
        explicit = _EXPLICIT.match(line)
        if explicit:
            rest = explicit["rest"].strip()
            footnote = re.match(r"\[[^\]]*\]\s*(.*)", rest)
            if footnote:
                out.append((explicit["indent"] + footnote[1], False))
            else:  # comment, label, substitution definition, hyperlink target
                skip_indent = indent
            continue
        if line.endswith("::"):
            literal_indent = indent
            head = line[:-2]  # "Text::" → "Text:", "Text ::" → "Text", "::" → nothing
            line = head.rstrip() if head.endswith(" ") or not head.strip() else head + ":"
            if not line.strip():
                continue
        if _TABLE_BORDER.match(line):
            continue
        out.append((line, False))
    # Inline markup is stripped per run of non-literal lines, so it may span lines.
    text = "\n".join(
        "\n".join(line for line, _ in run)
        if literal
        else strip_inline("\n".join(line for line, _ in run))
        for literal, run in itertools.groupby(out, key=lambda item: item[1])
    )
    body = textwrap.dedent(text).strip()
    return re.sub(r"\n\s*\n+", "\n\n", body)


def parse_rest(source: str, path: str) -> tuple[str, list[Section]]:
    """(page title, every section after the title) of one reST page; keys are
    `PATH#slug-of-heading` (`-2`, `-3` appended to repeats within the page)."""
    lines = source.splitlines()
    headings = list(_headings(lines))
    if not headings:
        return "", []
    title = " ".join(strip_inline(lines[headings[0][1]]).split())
    sections: list[Section] = []
    slugs: Counter[str] = Counter()
    for index, (_, text_line, last) in enumerate(headings[1:], start=1):
        end = headings[index + 1][0] if index + 1 < len(headings) else len(lines)
        heading = " ".join(strip_inline(lines[text_line]).split())
        slug = _slug(heading)
        slugs[slug] += 1
        if slugs[slug] > 1:
            slug = f"{slug}-{slugs[slug]}"
        body = _clean_rest(lines[last + 1 : end])
        sections.append(Section(f"{path}#{slug}", title, heading, body))
    return title, sections


def usable_sections(pages: Iterable[tuple[str, Sequence[Section]]]) -> list[Section]:
    """The sections that make queries: heading of 2+ words, body of MIN_BODY+ characters,
    not generic, heading text unique (case-insensitive) across all pages and titles."""
    pages = list(pages)
    counts = Counter(
        heading.casefold()
        for title, sections in pages
        for heading in [title, *(s.heading for s in sections)]
        if heading
    )
    return [
        section
        for _, sections in pages
        for section in sections
        if len(section.heading.split()) >= 2
        and len(section.body) >= MIN_BODY
        and section.heading.casefold() not in GENERIC_HEADINGS
        and counts[section.heading.casefold()] == 1
    ]


def pydoc_sections(cache: Path | None = None) -> list[Section]:
    """All usable sections of `python3.11-doc`, ordered by page path then position."""
    tree = fetch_package(PYDOC_PACKAGE, cache or default_cache())
    root = tree / "usr/share/doc/python3.11/html/_sources"
    pages: list[tuple[str, list[Section]]] = []
    for file in sorted(root.rglob("*.rst.txt")):
        path = file.relative_to(root).as_posix().removesuffix(".txt")
        if path.startswith(PYDOC_EXCLUDED):
            continue
        pages.append(parse_rest(file.read_text(encoding="utf-8", errors="replace"), path))
    return usable_sections(pages)


def retrieval_set(
    sections: Sequence[Section], documents: int, queries: int, seed: int
) -> tuple[list[Section], list[Section]]:
    """(corpus, queries): `documents` sections drawn with random.Random(seed), then
    `queries` of those; both in the order drawn."""
    if not 0 < documents <= len(sections) or not 0 < queries <= documents:
        raise ValueError(
            f"need 0 < queries ({queries}) <= documents ({documents}) <= {len(sections)}"
        )
    rng = random.Random(seed)
    corpus = rng.sample(list(sections), documents)
    return corpus, rng.sample(corpus, queries)


# --------------------------------------------------------------------------- HTML (pgdoc)

PG_SECTION_CLASSES = _words(
    """chapter appendix preface part reference refentry simplesect sect1 sect2 sect3 sect4
    sect5 refsect1 refsect2 refsect3"""
)
PG_SKIPPED_CLASSES = _words("navheader navfooter toc footnotes footnote")
_BLOCK_TAGS = _words(
    """p div pre li dt dd tr table ul ol dl h1 h2 h3 h4 h5 h6 br blockquote hr
    caption thead tbody tfoot"""
)
_VOID_TAGS = _words("br hr img meta link col area base input wbr")
_HEADING_TAGS = _words("h1 h2 h3 h4 h5 h6")
_NUMBER = re.compile(
    r"^(?:[A-Z]\.|\d+\.|[IVXLC]+\.)(?:\d+\.)*\s+|^(?:Chapter|Appendix|Part)\s+[\w.]+\s+"
)


@dataclass
class _Open:
    id: str
    heading: list[str]
    blocks: list[str]
    current: list[str]
    heading_done: bool = False


class _PgHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str]] = []  # (tag, role: section|skip|heading|pre|"")
        self.open: list[_Open] = []  # the sections enclosing the current position
        self.opened: list[_Open] = []  # every section, in the order they open
        self.title: list[str] = []
        self.skipping = 0
        self.pre = 0  # depth of open <pre> elements
        self.in_title = False
        self.heading_target: _Open | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            self.handle_startendtag(tag, attrs)
            return
        classes = set((dict(attrs).get("class") or "").split())
        role = ""
        if tag == "title":
            self.in_title = True
        elif self.skipping or classes & PG_SKIPPED_CLASSES:
            role = "skip"
            self.skipping += 1
        elif tag == "div" and classes & PG_SECTION_CLASSES:
            role = "section"
            self._flush()
            self.open.append(_Open(dict(attrs).get("id") or "", [], [], []))
            self.opened.append(self.open[-1])
        elif tag in _HEADING_TAGS and self.open and not self.open[-1].heading_done:
            role = "heading"
            self.heading_target = self.open[-1]
        elif tag == "pre":
            role = "pre"
            self._flush()
            self.pre += 1
        elif tag in _BLOCK_TAGS:
            self._flush()
        elif tag in ("td", "th"):
            self.handle_data(" ")
        self.stack.append((tag, role))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS and not self.skipping:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in _VOID_TAGS or all(open_tag != tag for open_tag, _ in self.stack):
            return
        while self.stack:
            open_tag, role = self.stack.pop()
            if role == "skip":
                self.skipping -= 1
            elif role == "section":
                self._flush()
                self.open.pop()
            elif role == "heading" and self.heading_target is not None:
                self.heading_target.heading_done = True
                self.heading_target = None
            elif role == "pre":
                self._flush(pre=True)
                self.pre -= 1
            elif open_tag in _BLOCK_TAGS:
                self._flush()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif self.skipping or not self.open:
            return
        elif self.heading_target is not None:
            self.heading_target.heading.append(data)
        else:
            self.open[-1].current.append(data)

    def _flush(self, pre: bool = False) -> None:
        if not self.open or (self.pre and not pre):  # a <pre> ends only at its end tag
            return
        section = self.open[-1]
        text = "".join(section.current)
        section.current.clear()
        if pre:
            text = text.strip("\n").rstrip()
            if text.strip():
                section.blocks.append(textwrap.dedent(text))
        else:
            text = " ".join(text.split())
            if text:
                section.blocks.append(text)


def _unnumbered(text: str) -> str:
    return _NUMBER.sub("", " ".join(text.split()))


def parse_pg_html(source: str, filename: str) -> list[Section]:
    """Every section of one DocBook HTML page, in document order (of their openings);
    keys are `FILENAME#ID`. Prose paragraphs are single lines; <pre> blocks keep lines."""
    parser = _PgHtml()
    parser.feed(source)
    parser.close()
    page_title = _unnumbered("".join(parser.title))
    sections = []
    anchors: Counter[str] = Counter()
    for item in parser.opened:
        heading = _unnumbered("".join(item.heading))
        anchor = item.id or _slug(heading)
        anchors[anchor] += 1
        if anchors[anchor] > 1:
            anchor = f"{anchor}-{anchors[anchor]}"
        body = "\n\n".join(item.blocks)
        sections.append(Section(f"{filename}#{anchor}", page_title, heading, body))
    return sections


def pg_html_dir(tree: Path) -> Path:
    found = sorted(tree.glob("usr/share/doc/postgresql-doc-*/html"))
    if not found:
        raise RuntimeError(f"no usr/share/doc/postgresql-doc-*/html under {tree}")
    return found[-1]


def pg_sections(cache: Path | None = None, package: str = PGDOC_PACKAGE) -> list[Section]:
    """Every section with a heading of the PostgreSQL HTML documentation, by file name
    then position (release notes and the index excluded; no length filter)."""
    root = pg_html_dir(fetch_package(package, cache or default_cache()))
    sections: list[Section] = []
    for file in sorted(root.glob("*.html")):
        if file.name.startswith(("release", "bookindex")):
            continue
        parsed = parse_pg_html(file.read_text(encoding="utf-8", errors="replace"), file.name)
        sections.extend(s for s in parsed if s.heading)
    return sections


# --------------------------------------------------------------------------- questions

_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "Mr.", "Dr.", "No.")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"“])")
_BAD_FIRST_WORDS = _words(
    """this that these those it its they them there here each such which what who one
    another other others some any all both most many much several if when whenever while
    however also for in on at with by as to since because unless although though only
    otherwise thus therefore hence so but and or then currently instead normally usually
    typically often sometimes note see now first second finally next also again we you
    he she i our your his her their my not no yes after before once until where whether
    although even either neither let how why section chapter table figure example appendix
    part step"""
)
_MODAL_VERBS = {
    "provides": "provide", "returns": "return", "allows": "allow", "supports": "support",
    "controls": "control", "specifies": "specify", "determines": "determine",
    "contains": "contain", "creates": "create", "defines": "define", "removes": "remove",
    "changes": "change",
}  # fmt: skip
_PLURAL_VERBS = {base: base for base in _MODAL_VERBS.values()}
_SUBJECT = r"(?P<subject>[A-Za-z_][\w.'/-]*(?: [\w.'/-]+){0,5}?)"
_DEFINITION = re.compile(_SUBJECT + r" (?P<verb>is|are)(?P<used> used (?:to|for))? (?P<rest>.+)$")
_CAN_BE_USED = re.compile(_SUBJECT + r" can be used (?:to|for) (?P<rest>.+)$")
_ACTION = re.compile(
    _SUBJECT + r" (?P<verb>" + "|".join([*_MODAL_VERBS, *_PLURAL_VERBS]) + r") (?P<rest>.+)$"
)


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of one prose paragraph; never splits after common abbreviations."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        before = paragraph[start : match.start()]
        if before.endswith(_ABBREVIATIONS) or re.search(r"\b[A-Z]\.$", before):
            continue
        sentences.append(before.strip())
        start = match.end()
    sentences.append(paragraph[start:].strip())
    return [s for s in sentences if s]


def body_sentences(body: str) -> Iterator[str]:
    """Sentences of the body's prose paragraphs (single-line paragraphs; <pre> blocks
    and reST code keep their line breaks and are skipped)."""
    for paragraph in body.split("\n\n"):
        if "\n" not in paragraph:
            yield from split_sentences(paragraph)


def _good_sentence(sentence: str) -> bool:
    return (
        40 <= len(sentence) <= 400
        and sentence[0].isalnum()
        and sentence.endswith(".")
        and not sentence.endswith("..")
    )


# Words that cannot occur inside a subject (modal and auxiliary verbs, adverbs, and the
# stop words other than articles, "of" and "and"), and words that do not make a subject
# specific ("the first mechanism", "the following options").
_NOT_IN_SUBJECT = (STOP_WORDS - {"the", "a", "an", "of", "and"}) | _words(
    """will would can could must may might should shall either neither always never often
    also then still already usually normally typically generally actually simply merely
    really basically essentially effectively initially finally similarly additionally
    internally optionally implicitly explicitly automatically currently likewise even
    instead rather perhaps probably now just"""
)
# Words that refer to context the question does not have ("the following options").
_DEICTIC = _words("following above below previous next former latter same aforementioned")
# Words that do not make a subject specific ("the first mechanism", "the optional target").
_VAGUE_WORDS = _words(
    """first second third last new other given specified current default corresponding
    respective certain various single simple whole entire actual main major minor
    practical optional important example left-hand right-hand side result value
    difference case way thing part kind"""
)


def _subject_ok(subject: str) -> bool:
    words = subject.split()
    return (
        1 <= len(words) <= 6
        and words[0].lower() not in _BAD_FIRST_WORDS
        and not any(word.lower() in _NOT_IN_SUBJECT for word in words[1:])
        and not any(word.lower() in _DEICTIC for word in words)
        and not any(ch in subject for ch in ',;:()[]"“”')
        and len([w for w in content_words(subject) if w not in _VAGUE_WORDS]) >= 2
    )


def _subject_text(subject: str) -> str:
    """The subject inside a question: a Capitalized first word (an article or a common
    word) is lowered; acronyms and identifiers (SQL, PostgreSQL, pg_dump) are kept."""
    first, _, rest = subject.partition(" ")
    if re.fullmatch(r"[A-Z][a-z]*", first):
        first = first.lower()
    return f"{first} {rest}".strip()


def _looks_plural(subject: str) -> bool:
    """Crude agreement check: the subject's last word is a plain lower-case word ending in
    -s (not -ss, -us, -is); identifiers and acronyms are not judged."""
    last = subject.split()[-1]
    return bool(re.fullmatch(r"[a-z]+", last)) and re.search(r"[^siu]s$", last) is not None


def sentence_question(sentence: str) -> str | None:
    """The question a definitional sentence answers, by the module docstring's rules."""
    if not _good_sentence(sentence):
        return None
    used = _CAN_BE_USED.match(sentence)
    if used and _subject_ok(used["subject"]) and len(used["rest"].split()) >= 3:
        return f"What can {_subject_text(used['subject'])} be used for?"
    definition = _DEFINITION.match(sentence)
    if definition and _subject_ok(definition["subject"]):
        subject, verb, rest = definition["subject"], definition["verb"], definition["rest"]
        if len(rest.split()) >= 3:
            if definition["used"]:
                return f"What {verb} {_subject_text(subject)} used for?"
            if rest.split()[0] in ("a", "an", "the", "one"):
                return f"What {verb} {_subject_text(subject)}?"
    action = _ACTION.match(sentence)
    if action and _subject_ok(action["subject"]) and len(action["rest"].split()) >= 3:
        subject, verb = action["subject"], action["verb"]
        if verb in _MODAL_VERBS and not _looks_plural(subject):
            return f"What does {_subject_text(subject)} {_MODAL_VERBS[verb]}?"
        if verb in _PLURAL_VERBS and _looks_plural(subject):
            return f"What do {_subject_text(subject)} {verb}?"
    return None


_NOT_GERUNDS = _words(
    """string during nothing something anything everything thing spring bring ring king ping
    sibling ceiling evening morning wing swing sting sing"""
)


def heading_question(heading: str) -> str | None:
    """`How do I go about <heading>?` for task-like headings (first word ends in -ing)."""
    words = heading.split()
    first = words[0].lower() if words else ""
    if len(words) < 2 or not first.endswith("ing") or first in _NOT_GERUNDS:
        return None
    # Title Case words are lowered; acronyms and identifiers (SQL, PostgreSQL, pg_dump) kept.
    lowered = [
        w.lower() if re.fullmatch(r"[A-Z][a-z]*(?:-[A-Za-z][a-z]*)*", w) else w for w in words
    ]
    return f"How do I go about {' '.join(lowered)}?"


def _acceptable(question: str, support: str) -> bool:
    return len(content_words(question)) >= 2 and question.rstrip("?").lower() not in support.lower()


def derive_question(section: Section) -> tuple[str, str] | None:
    """(question, support sentence) for one section, or None (module docstring rules)."""
    sentences = list(body_sentences(section.body))
    for sentence in sentences:
        question = sentence_question(sentence)
        if question and _acceptable(question, sentence):
            return question, sentence
    question = heading_question(section.heading)
    if question:
        support = next((s for s in sentences if _good_sentence(s)), None)
        if support and _acceptable(question, support):
            return question, support
    return None


def unambiguous_questions(sections: Sequence[Section]) -> dict[str, tuple[str, str]]:
    """Section key → (question, support) for the sections that give a question, except
    questions derived from more than one section and support sentences found in more
    than one section (boilerplate such as "The following command-line options control
    the database connection parameters.")."""
    derived = {s.key: q for s in sections if (q := derive_question(s)) is not None}
    questions = Counter(question.casefold() for question, _ in derived.values())
    sentences = Counter(sentence for s in sections for sentence in set(body_sentences(s.body)))
    return {
        key: (question, support)
        for key, (question, support) in derived.items()
        if questions[question.casefold()] == 1 and sentences[support] == 1
    }


UNANSWERABLE: tuple[str, ...] = (
    "How do I write a Kubernetes Helm chart for a stateless web deployment?",
    "What does a Kubernetes liveness probe do when a pod stops responding?",
    "How do React hooks like useEffect handle component cleanup?",
    "When should I use useMemo instead of useCallback in React components?",
    "How does the Rust borrow checker prevent dangling references?",
    "What are Rust lifetimes annotations used for in function signatures?",
    "How does TCP congestion control work in the Linux kernel with BBR?",
    "What is the difference between CUBIC and Reno congestion avoidance?",
    "How do I merge layers and apply a layer mask in Photoshop?",
    "How long should sourdough bread dough proof before baking?",
    "Why did the Western Roman Empire fall in the fifth century?",
    "Who was Julius Caesar and why did he cross the Rubicon?",
    "How do I tune a guitar to drop D tuning?",
    "What are the rules of castling in chess?",
    "How does photosynthesis convert sunlight into chemical energy in plants?",
    "What causes the northern lights aurora borealis?",
    "How do I configure a Wi-Fi mesh network router at home?",
    "What is the offside rule in association football?",
    "How do I bake a chocolate soufflé that does not collapse?",
    "How do I train a puppy to walk on a leash?",
    "What are the symptoms of vitamin D deficiency?",
    "How do I replace the brake pads on a bicycle?",
    "How does a Docker multi-stage build reduce image size?",
    "How do I center a div horizontally with CSS flexbox?",
    "What does the Angular dependency injection framework provide for components?",
    "How do I animate a SwiftUI view when state changes?",
    "How does Kotlin coroutine structured concurrency cancel child jobs?",
    "How do I create a pivot chart in Microsoft Excel?",
    "How do I export a Blender 3D model to glTF format?",
    "What is the Nyquist sampling theorem in audio engineering?",
    "How does a jet engine turbofan produce thrust?",
    "What is the capital city of Mongolia?",
    "How do I grow tomatoes on a balcony garden?",
    "Which planets in the solar system have rings?",
    "How does the Ethereum proof of stake consensus choose validators?",
    "What is the Terraform state file and how is remote state locked?",
    "How do I write an Ansible playbook to install nginx?",
    "How does Git rebase interactive squash commits?",
    "What is the Big Bang cosmic microwave background radiation?",
    "How do I knit a scarf with a cable stitch pattern?",
    "What were the main causes of the French Revolution?",
    "How do I configure OSPF routing areas on a Cisco router?",
    "How does the Linux Completely Fair Scheduler pick the next task?",
    "What is the difference between Vue computed properties and watchers?",
    "How does garbage collection work in the Java G1 collector?",
    "How do I use Pandas groupby to aggregate a DataFrame?",
    "How do I fine tune a BERT transformer model for sentiment classification?",
    "What is gradient descent momentum in neural network training?",
    "How do I solder surface mount components onto a circuit board?",
    "What is the recommended tire pressure for a mountain bike?",
    "How do I brew espresso with a manual lever machine?",
    "How does the immune system produce antibodies after vaccination?",
    "How do I set up a Minecraft server for friends?",
    "What is the plot of Shakespeare's Hamlet?",
    "How do I change the oil filter in a diesel car engine?",
    "How does a refrigerator compressor cycle refrigerant?",
    "How do I configure Nginx as a reverse proxy with HTTP/2 push?",
    "What is the Flutter widget tree and how does hot reload work?",
    "How do I write unit tests with the Jest mocking library?",
    "How do Android activities handle screen rotation lifecycle?",
    "What is the difference between Spring Boot starters and auto configuration?",
    "How do I use Unity physics rigidbody colliders in a 2D game?",
    "How does a solar panel inverter convert direct current to alternating current?",
    "How do I prune an apple tree in late winter?",
    "What is Bluetooth Low Energy advertising interval?",
    "How do I calibrate a 3D printer bed for first layer adhesion?",
    "What were the achievements of the Ming dynasty?",
    "How does the Elixir OTP supervisor restart crashed processes?",
    "How do I configure Prometheus Alertmanager routing for Slack notifications?",
    "How does a GraphQL Apollo client cache normalize query results?",
    "How do I play a barre chord on the ukulele?",
    "What is the migration route of monarch butterflies?",
    "How do I rotate a PDF page in Adobe Acrobat Reader?",
    "What is the difference between a crocodile and an alligator?",
    "How do I set up two-factor authentication on an Instagram account?",
    "How does a Wankel rotary engine differ from a piston engine?",
    "What spices go into a traditional garam masala blend?",
    "How do I wax cross-country skis for cold snow?",
    "What did the Treaty of Westphalia settle in 1648?",
    "How do I configure Webpack code splitting with dynamic imports?",
    "How does the Svelte compiler handle reactive declarations?",
    "What is the half-life of carbon-14 used in radiocarbon dating?",
    "How do I replace a ceiling fan light fixture safely?",
    "How do honeybees communicate with the waggle dance?",
)


def unanswerable_questions(documentation: Iterable[Section]) -> list[tuple[int, str]]:
    """(index in UNANSWERABLE, question) of the questions none of whose adjacent content
    word pairs occur adjacently (stop words removed) in any of the given sections."""
    pairs: set[tuple[str, str]] = set()
    for section in documentation:
        for text in (section.page_title, section.heading, section.body):
            words = content_words(text)
            pairs.update(itertools.pairwise(words))
    kept = []
    for index, question in enumerate(UNANSWERABLE):
        words = content_words(question)
        if not pairs.intersection(itertools.pairwise(words)):
            kept.append((index, question))
    return kept


def qa_set(
    documentation: Sequence[Section], sections: int, answerable: int, unanswerable: int, seed: int
) -> tuple[list[Section], list[QaItem]]:
    """`pgdoc_qa` on already parsed sections (see the module docstring)."""
    if not 0 < answerable <= sections:
        raise ValueError(f"need 0 < answerable ({answerable}) <= sections ({sections})")
    eligible = [s for s in documentation if MIN_BODY <= len(s.body) <= MAX_PG_BODY]
    derived = unambiguous_questions(eligible)
    with_question = [s for s in eligible if s.key in derived]
    if len(with_question) < answerable or len(eligible) < sections:
        raise ValueError(
            f"only {len(with_question)} sections give questions and {len(eligible)} are "
            f"eligible; asked for {answerable} and {sections}"
        )
    rng = random.Random(seed)
    asked = rng.sample(with_question, answerable)
    chosen = {s.key for s in asked}
    others = rng.sample([s for s in eligible if s.key not in chosen], sections - answerable)
    chosen |= {s.key for s in others}
    corpus = [s for s in eligible if s.key in chosen]
    items = [
        QaItem(f"a:{s.key}", derived[s.key][0], derived[s.key][1], s.key, True)
        for s in sorted(asked, key=lambda s: s.key)
    ]
    candidates = unanswerable_questions(documentation)
    if len(candidates) < unanswerable:
        raise ValueError(f"only {len(candidates)} unanswerable questions pass the check")
    for index, question in sorted(rng.sample(candidates, unanswerable)):
        items.append(QaItem(f"u:{index:03d}", question, "", "", False))
    return corpus, items


def pgdoc_qa(
    cache: Path | None = None,
    sections: int = 300,
    answerable: int = 150,
    unanswerable: int = 60,
    seed: int = 7,
) -> tuple[list[Section], list[QaItem]]:
    """(corpus to ingest, questions): answerable ones first, by section key, then
    unanswerable ones, by their index in UNANSWERABLE."""
    return qa_set(pg_sections(cache), sections, answerable, unanswerable, seed)


# --------------------------------------------------------------------------- summary


def _short(section: Section) -> dict[str, Any]:
    data = asdict(section)
    if len(section.body) > 300:
        data["body"] = section.body[:300] + " …"
    return data


def summary(cache: Path, seed: int) -> dict[str, Any]:
    python_sections = pydoc_sections(cache)
    corpus, queries = retrieval_set(python_sections, min(len(python_sections), 1500), 300, seed)
    documentation = pg_sections(cache)
    qa_corpus, items = qa_set(documentation, 300, 150, 60, seed)
    kept = {index for index, _ in unanswerable_questions(documentation)}
    answerable = [item for item in items if item.answerable]
    unanswerable = [item for item in items if not item.answerable]
    return {
        "cache": str(cache),
        "seed": seed,
        "pydoc-sections": {
            **provenance(cache / PYDOC_PACKAGE),
            "pages": len({s.key.split("#")[0] for s in python_sections}),
            "usable_sections": len(python_sections),
            "body_chars_median": sorted(len(s.body) for s in python_sections)[
                len(python_sections) // 2
            ],
            "example_retrieval_set": {"documents": len(corpus), "queries": len(queries)},
            "samples": [_short(s) for s in queries[:3]],
        },
        "pgdoc-qa": {
            **provenance(cache / PGDOC_PACKAGE),
            "sections_parsed": len(documentation),
            "eligible_sections": sum(MIN_BODY <= len(s.body) <= MAX_PG_BODY for s in documentation),
            "sections_giving_questions": len(
                unambiguous_questions(
                    [s for s in documentation if MIN_BODY <= len(s.body) <= MAX_PG_BODY]
                )
            ),
            "corpus_sections": len(qa_corpus),
            "answerable": len(answerable),
            "unanswerable": len(unanswerable),
            "unanswerable_dropped_by_check": [
                q for i, q in enumerate(UNANSWERABLE) if i not in kept
            ],
            "samples": {
                "answerable": [asdict(item) for item in answerable[:3]],
                "unanswerable": [asdict(item) for item in unanswerable[:3]],
                "corpus": [_short(s) for s in qa_corpus[:3]],
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="default: " + str(default_cache()))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    try:
        result = summary(args.cache or default_cache(), args.seed)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        raise SystemExit(1) from error
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
