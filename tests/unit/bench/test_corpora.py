"""bench.corpora: the reST and DocBook HTML section parsers, the question rules and the
seeded sampling, on small inline samples (no package is fetched)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.corpora import (
    UNANSWERABLE,
    Section,
    body_sentences,
    content_words,
    default_cache,
    derive_question,
    fetch_package,
    heading_question,
    parse_pg_html,
    parse_rest,
    qa_set,
    retrieval_set,
    sentence_question,
    split_sentences,
    strip_inline,
    unambiguous_questions,
    unanswerable_questions,
    usable_sections,
)

REST = """\
.. _logging-page:

*************************************
  :mod:`logging` --- Logging facility
*************************************

.. module:: logging
   :synopsis: Flexible event logging system for applications.

.. index:: pair: Errors; logging

Intro text that belongs to the page title and is not a section.

--------------

Logger Objects
--------------

Loggers have the following *attributes* and **methods**; see :func:`~logging.getLogger`
and :pep:`282`. Multiple calls to :func:`getLogger` with the same name return
the same object (see `the tutorial <https://example.org/tutorial>`_).

.. function:: getLogger(name=None)

   Return a logger with the specified name.

   .. versionadded:: 3.2

.. This is a comment
   spanning two lines.

.. toctree::
   :maxdepth: 2

   howto/one

Example::

    >>> logging.getLogger(*args, **kw)  # ``literal`` and *stars* stay
    <Logger root>

Logger Objects
==============

A second heading with the same text gets a numbered key.
"""


def test_rest_title_sections_and_keys() -> None:
    title, sections = parse_rest(REST, "library/logging.rst")
    assert title == "logging --- Logging facility"
    assert [s.key for s in sections] == [
        "library/logging.rst#logger-objects",
        "library/logging.rst#logger-objects-2",
    ]
    assert {s.page_title for s in sections} == {title}
    assert [s.heading for s in sections] == ["Logger Objects", "Logger Objects"]
    assert sections[1].body == "A second heading with the same text gets a numbered key."


def test_rest_body_markup_is_stripped_and_directives_handled() -> None:
    body = parse_rest(REST, "library/logging.rst")[1][0].body
    assert "Logger Objects" not in body  # the heading is not part of the body
    assert "Loggers have the following attributes and methods; see getLogger\nand PEP 282." in body
    assert "(see the tutorial)." in body
    assert "getLogger(name=None)\n\n   Return a logger with the specified name." in body
    assert "New in version 3.2." in body
    for dropped in ("index::", "Errors; logging", "comment", "toctree", "howto/one", ":synopsis:"):
        assert dropped not in body
    assert "Intro text" not in body
    # A literal block keeps its text verbatim, including what looks like markup.
    assert (
        "Example:\n\n    >>> logging.getLogger(*args, **kw)  # ``literal`` and *stars* stay" in body
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (":class:`~collections.OrderedDict`", "OrderedDict"),
        (":meth:`!str.join`", "str.join"),
        (":ref:`Basic Tutorial <logging-basic-tutorial>`", "Basic Tutorial"),
        (":rfc:`2822` and :issue:`1234` and :gh:`99`", "RFC 2822 and bpo-1234 and gh-99"),
        ("``'>=2.7, !=3.0.*'`` is kept", "'>=2.7, !=3.0.*' is kept"),
        ("call f(*args, **kwargs) here", "call f(*args, **kwargs) here"),
        ("a *b* and **c d**", "a b and c d"),
        ("see `Docs\n<https://x.org>`__ now", "see Docs now"),
        ("a |version| b", "a version b"),
        ("end. [#]_ and x[0]_", "end. and x[0]_"),
        ("const char \\*buffer", "const char *buffer"),
    ],
)
def test_strip_inline(source: str, expected: str) -> None:
    assert strip_inline(source) == expected


def _section(key: str, heading: str, body: str, title: str = "Page") -> Section:
    return Section(key, title, heading, body)


def test_usable_sections_filter_headings_and_bodies() -> None:
    long = "x" * 250
    pages = [
        (
            "Page A",
            [
                _section("a#1", "Unique Heading Here", long),
                _section("a#2", "Examples", long),  # generic
                _section("a#3", "Single", long),  # one word
                _section("a#4", "Short Body Section", "too short"),
                _section("a#5", "Shared Heading Text", long),
            ],
        ),
        ("Page B", [_section("b#1", "shared heading text", long)]),  # repeats, any case
        ("Another Page Title", [_section("c#1", "Page B", long)]),  # equals a page title
    ]
    assert [s.key for s in usable_sections(pages)] == ["a#1"]


PG_HTML = """<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>5.4. Constraints</title>
<link rel="stylesheet" href="s.css" /></head><body>
<div class="navheader"><table><tr><th>5.4. Constraints</th></tr></table><hr /></div>
<div class="sect1" id="DDL-CONSTRAINTS"><div class="titlepage"><div><div>
<h2 class="title" style="clear: both">5.4. Constraints</h2></div></div></div>
<div class="toc"><dl><dt><a href="#x">5.4.1. Check Constraints</a></dt></dl></div>
<p><a id="id-1" class="indexterm"></a>
    Data types are a way to limit the kind of data that can be stored in a
    table.<a href="#ftn.1" class="footnote"><sup class="footnote">[1]</sup></a> For many
    applications, however, the constraint they provide is too coarse.</p>
<div class="sect2" id="DDL-CONSTRAINTS-CHECK"><div class="titlepage"><div><div>
<h3 class="title">5.4.1. Check Constraints</h3></div></div></div>
<p>A check constraint is the most generic constraint type.  It allows you to
  specify that the value in a certain column must satisfy a
  <code class="literal">Boolean</code> expression.</p>
<pre class="programlisting">
CREATE TABLE products (
    price numeric CHECK (price &gt; 0)
);
</pre>
<div class="note"><h3 class="title">Note</h3><p>A note inside the section.</p></div>
</div>
<p>Text after the nested section belongs to the outer one.</p>
</div>
<div class="footnotes"><p>[1] A footnote.</p></div>
<div class="navfooter"><p>Prev Next</p></div>
</body></html>
"""


def test_pg_html_sections() -> None:
    outer, inner = parse_pg_html(PG_HTML, "ddl-constraints.html")
    assert outer.key == "ddl-constraints.html#DDL-CONSTRAINTS"
    assert inner.key == "ddl-constraints.html#DDL-CONSTRAINTS-CHECK"
    assert (outer.page_title, outer.heading) == ("Constraints", "Constraints")
    assert inner.heading == "Check Constraints"
    assert outer.body == (
        "Data types are a way to limit the kind of data that can be stored in a table. "
        "For many applications, however, the constraint they provide is too coarse."
        "\n\nText after the nested section belongs to the outer one."
    )
    assert inner.body == (
        "A check constraint is the most generic constraint type. It allows you to specify "
        "that the value in a certain column must satisfy a Boolean expression."
        "\n\nCREATE TABLE products (\n    price numeric CHECK (price > 0)\n);"
        "\n\nNote\n\nA note inside the section."
    )
    # <pre> keeps its lines, so it is not read as prose.
    assert list(body_sentences(inner.body)) == [
        "A check constraint is the most generic constraint type.",
        "It allows you to specify that the value in a certain column must satisfy a "
        "Boolean expression.",
        "Note",
        "A note inside the section.",
    ]


def test_pg_refentry_heading() -> None:
    page = (
        "<html><head><title>CREATE SEQUENCE</title></head><body>"
        '<div class="refentry" id="SQL-CREATESEQUENCE"><div class="titlepage"></div>'
        '<div class="refnamediv"><h2><span class="refentrytitle">CREATE SEQUENCE</span></h2>'
        "<p>CREATE SEQUENCE — define a new sequence generator</p></div>"
        '<div class="refsect1" id="id-1.9.3.81.5"><h2>Description</h2>'
        "<p>CREATE SEQUENCE creates a new sequence number generator.</p></div></div>"
        "</body></html>"
    )
    entry, description = parse_pg_html(page, "sql-createsequence.html")
    assert (entry.heading, entry.body) == (
        "CREATE SEQUENCE",
        "CREATE SEQUENCE — define a new sequence generator",
    )
    assert description.key == "sql-createsequence.html#id-1.9.3.81.5"
    assert (description.page_title, description.heading) == ("CREATE SEQUENCE", "Description")


def test_split_sentences_keeps_abbreviations() -> None:
    text = "Use a type, e.g. Integer values. It works. See Section 5.4 for more. Done!"
    assert split_sentences(text) == [
        "Use a type, e.g. Integer values.",
        "It works.",
        "See Section 5.4 for more.",
        "Done!",
    ]


@pytest.mark.parametrize(
    ("sentence", "question"),
    [
        (
            "The pg_buffercache module provides a means for examining the shared buffer cache.",
            "What does the pg_buffercache module provide?",
        ),
        (
            "CREATE TEXT SEARCH DICTIONARY creates a new text search dictionary.",
            "What does CREATE TEXT SEARCH DICTIONARY create?",
        ),
        (
            "A sequence generator is a special kind of table used to generate row numbers.",
            "What is a sequence generator?",
        ),
        (
            "Replication origins provide an optional mechanism to recognize changes.",
            "What do replication origins provide?",
        ),
        (
            "Multixact IDs are used to support row locking by multiple transactions.",
            "What are multixact IDs used for?",
        ),
        (
            "GIN indexes can be used to efficiently search for keys in jsonb documents.",
            "What can GIN indexes be used for?",
        ),
        (
            "The function PQnotifies returns the next notification from the server queue.",
            "What does the function PQnotifies return?",
        ),
        # Rejected: pronoun subject, one-word subject, modal inside the subject, context
        # words, a vague subject, a singular verb after a plural-looking subject, no
        # article after "is", too short, not a statement.
        ("It provides a means for examining the shared buffer cache in detail.", None),
        ("PostgreSQL allows a table of no columns to be created in most cases.", None),
        ("CREATE OR REPLACE TRIGGER will either create a new trigger or replace one.", None),
        ("The following command-line options control the database connection.", None),
        ("The first mechanism allows comparison files to be selected per platform.", None),
        ("The WAL tracks changes to these parameters on the primary server.", None),
        ("The buffer cache size is set to 128 megabytes by default on most systems.", None),
        ("Index scans are a plan.", None),
        ("Does the pg_buffercache module provide a means for examining the cache?", None),
    ],
)
def test_sentence_question(sentence: str, question: str | None) -> None:
    assert sentence_question(sentence) == question


@pytest.mark.parametrize(
    ("heading", "question"),
    [
        ("Creating a Database", "How do I go about creating a database?"),
        ("Using SSL with pg_dump", "How do I go about using SSL with pg_dump?"),
        (
            "Retrieving Query Results Row-by-Row",
            "How do I go about retrieving query results row-by-row?",
        ),
        ("String Comparison Behavior", None),  # "String" is not a gerund
        ("Constraints", None),
        ("Description", None),
    ],
)
def test_heading_question(heading: str, question: str | None) -> None:
    assert heading_question(heading) == question


def test_derive_question_prefers_a_sentence_then_the_heading() -> None:
    body = (
        "Before anyone can access the database, you must start the database server.\n\n"
        "pg_ctl start\n  -D /data\n\n"
        "The pg_ctl utility provides a convenient wrapper around starting the server."
    )
    sentence_based = derive_question(_section("k", "Starting the Database Server", body))
    assert sentence_based == (
        "What does the pg_ctl utility provide?",
        "The pg_ctl utility provides a convenient wrapper around starting the server.",
    )
    no_definition = body.rsplit("\n\n", 1)[0]
    heading_based = derive_question(_section("k", "Starting the Database Server", no_definition))
    assert heading_based == (
        "How do I go about starting the database server?",
        "Before anyone can access the database, you must start the database server.",
    )
    assert derive_question(_section("k", "Server", no_definition)) is None
    for found in (sentence_based, heading_based):
        assert found is not None
        question, support = found
        assert support in body
        assert len(content_words(question)) >= 2
        assert question.rstrip("?").lower() not in support.lower()


def test_unanswerable_check_drops_questions_whose_word_pairs_occur() -> None:
    docs = [_section("d#1", "Heading", "The Kubernetes Helm configuration is not covered here.")]
    kept = dict(unanswerable_questions(docs))
    assert UNANSWERABLE[0].startswith("How do I write a Kubernetes Helm chart")
    assert 0 not in kept  # "kubernetes helm" occurs
    assert len(kept) == len(UNANSWERABLE) - 1
    assert len(UNANSWERABLE) >= 60
    assert len(set(UNANSWERABLE)) == len(UNANSWERABLE)


NAMES = [f"{a}{b}" for a in ("alpha", "beta", "gamma", "delta", "omega") for b in "xyzwv"]


def _docs() -> list[Section]:
    docs = []
    for i, name in enumerate(NAMES):
        filler = f"Filler sentence number {i} explains some unrelated detail at length here. " * 3
        definition = f"The {name} frobnicator provides a way to reticulate splines number {i}."
        body = filler + definition if i % 3 else filler  # every third has no question
        docs.append(_section(f"p{i:02d}.html#s", f"Section {i}", body, f"Page {i}"))
    docs.append(_section("short.html#s", "Short", "Too short to be eligible."))
    return docs


def test_qa_set_is_deterministic_and_well_formed() -> None:
    docs = _docs()
    corpus, items = qa_set(docs, sections=20, answerable=10, unanswerable=50, seed=3)
    assert (corpus, items) == qa_set(docs, sections=20, answerable=10, unanswerable=50, seed=3)
    assert (corpus, items) != qa_set(docs, sections=20, answerable=10, unanswerable=50, seed=4)
    assert len({s.key for s in corpus}) == len(corpus) == 20
    assert [s.key for s in corpus] == sorted(s.key for s in corpus)  # document order
    answerable = [item for item in items if item.answerable]
    unanswerable = [item for item in items if not item.answerable]
    assert (len(answerable), len(unanswerable)) == (10, 50)
    by_key = {s.key: s for s in corpus}
    assert len({item.section_key for item in answerable}) == 10  # one per section
    for item in answerable:
        assert item.support in by_key[item.section_key].body
        assert item.question.startswith("What does the ")
    assert all(item.question in UNANSWERABLE and not item.support for item in unanswerable)
    assert len({item.key for item in items}) == len(items)
    with pytest.raises(ValueError, match="give questions"):
        qa_set(docs, sections=20, answerable=18, unanswerable=5, seed=3)
    with pytest.raises(ValueError, match="unanswerable"):
        qa_set(docs, sections=20, answerable=10, unanswerable=len(UNANSWERABLE) + 1, seed=3)


def test_ambiguous_questions_are_dropped() -> None:
    docs = _docs()
    original = docs[1]  # has a question
    assert original.key in unambiguous_questions(docs)
    # Another section with the same definitional sentence: neither gives a question.
    twin = _section("twin.html#s", "Twin", "Other words here. " * 12 + original.body[-80:])
    assert twin.body.endswith(unambiguous_questions(docs)[original.key][1])
    found = unambiguous_questions([*docs, twin])
    assert original.key not in found
    assert twin.key not in found
    assert len(found) == len(unambiguous_questions(docs)) - 1


def test_retrieval_set_is_seeded() -> None:
    sections = [_section(f"k{i}", f"Heading number {i}", "b" * 200) for i in range(100)]
    corpus, queries = retrieval_set(sections, documents=40, queries=10, seed=1)
    assert (corpus, queries) == retrieval_set(sections, documents=40, queries=10, seed=1)
    assert corpus != retrieval_set(sections, documents=40, queries=10, seed=2)[0]
    assert (len(set(corpus)), len(set(queries))) == (40, 10)
    assert set(queries) <= set(corpus)
    with pytest.raises(ValueError, match="<= 100"):
        retrieval_set(sections, documents=101, queries=10, seed=1)
    with pytest.raises(ValueError, match=r"queries \(11\) <= documents \(10\)"):
        retrieval_set(sections, documents=10, queries=11, seed=1)


def test_fetch_package_reuses_an_unpacked_tree(tmp_path: Path) -> None:
    tree = tmp_path / "python3.11-doc"
    tree.mkdir()
    (tree / "PROVENANCE.json").write_text(json.dumps({"package": "python3.11-doc"}))
    assert fetch_package("python3.11-doc", tmp_path) == tree  # no apt-get run


def test_default_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROTOMESH_BENCH_CACHE", str(tmp_path))
    assert default_cache() == tmp_path
    monkeypatch.delenv("PROTOMESH_BENCH_CACHE")
    assert default_cache() == Path.home() / ".cache" / "protomesh-bench"
