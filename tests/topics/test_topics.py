import re
from pathlib import Path

from deepnotes.lab.loader import load_claims
from deepnotes.topics import CHAPTERS, CLAIM_TEXT, TOPICS, topic

ROOT = Path(__file__).resolve().parents[2]


def test_ids_are_unique_and_well_formed():
    ids = [t.id for t in TOPICS]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"\d+\.\d+", i) and int(i.split(".")[0]) in CHAPTERS for i in ids)
    assert set(CHAPTERS) == set(range(1, 24))


def test_declared_implementations_resolve_and_tests_exist():
    for t in TOPICS:
        assert not t.missing_impl(), (t.id, t.missing_impl())
        for f in t.tests:
            assert (ROOT / f).is_file(), (t.id, f)
        if t.tests:
            assert t.impl, f"{t.id} lists tests but no implementation"


def test_every_registered_claim_is_a_known_claim_with_known_topics():
    ids = {t.id for t in TOPICS}
    registry = load_claims()
    for name in registry.names():
        c = registry.get(name)
        assert c.id in CLAIM_TEXT or c.chapter >= 17, f"claim {c.id} is not in the topic map"
        assert set(c.topics) <= ids, (c.id, c.topics)


def test_topic_lookup():
    assert topic("1.2").chapter == 1
    try:
        topic("99.1")
    except ValueError as exc:
        assert "valid IDs" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("unknown topic must raise")


def test_reference_declarations_are_backed_by_the_tests():
    """'reference-tested' needs a declaration the test files bear out; a wish does not count."""
    for t in TOPICS:
        assert not t.undeclared_references(), (t.id, t.undeclared_references())
        if t.reference_tested:
            assert t.tested_against and t.tests and t.ref, t.id
    by_status = {t.status for t in TOPICS}
    assert {"reference-tested", "no reference (hand-checked)"} <= by_status  # "todo": test_status_rules


def test_status_rules():
    from deepnotes.topics.model import Topic

    impl = ("deepnotes.linear.cost",)
    tests = ("tests/linear/test_linear.py",)
    assert Topic("1.9", "x").status == "todo"
    assert Topic("1.9", "x", impl=impl).status == "implemented, untested"
    assert Topic("1.9", "x", impl=impl, tests=tests).status == "no reference (hand-checked)"
    assert Topic("1.9", "x", ref="`numpy.linalg.lstsq`", impl=impl, tests=tests).status == \
        "tests, reference not declared"
    declared = Topic("1.9", "x", ref="`numpy.linalg.lstsq`", impl=impl, tests=tests,
                     tested_against=("numpy.linalg.lstsq",))
    assert declared.status == "reference-tested" and declared.reference_tested
    not_in_tests = Topic("1.9", "x", ref="r", impl=impl, tests=tests, tested_against=("numpy.linalg.svd",))
    assert not_in_tests.undeclared_references() == ["numpy.linalg.svd"] and not not_in_tests.reference_tested
    assert Topic("1.9", "x", impl=impl, tests=tests, todo="a part").status == "partly done"
    assert declared.where == "src/deepnotes/linear/model.py"


def test_items_without_their_demonstration_say_so():
    assert topic("11.3").status == "partly done" and topic("11.3").todo  # no loader-throughput measurement yet
    # 16.3's comparison is claim 16f: done items carry no todo
    assert topic("16.3").status != "partly done" and not topic("16.3").todo


def test_topics_command_names_chapters_shows_where_and_keeps_titles(capsys):
    from deepnotes.cli import main

    assert main(["topics", "--chapter", "16", "--where"]) == 0
    out = capsys.readouterr().out
    flat = " ".join(out.split())
    assert "16 Image classification" in flat
    assert "src/deepnotes/classic/knn.py" in flat.replace(" ", "") or "knn.py" in flat
    long_title = topic("16.4").title
    assert " ".join(long_title.split())[-40:].replace(" ", "") in flat.replace(" ", "").replace("│", "")
