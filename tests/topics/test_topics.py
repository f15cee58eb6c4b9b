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
