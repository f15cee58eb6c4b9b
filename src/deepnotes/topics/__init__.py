"""The topic map of the notes (IDs, titles, references) and each item's status."""

from deepnotes.topics.index import CHAPTERS, CLAIM_TEXT, TOPICS
from deepnotes.topics.model import Topic

__all__ = ["CHAPTERS", "CLAIM_TEXT", "TOPICS", "Topic", "topic"]


def topic(topic_id: str) -> Topic:
    """The item with ID ``topic_id``; ``ValueError`` listing valid IDs when unknown."""
    for t in TOPICS:
        if t.id == topic_id:
            return t
    raise ValueError(f"unknown topic {topic_id!r}; valid IDs: {', '.join(t.id for t in TOPICS)}")
