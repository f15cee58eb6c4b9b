"""Claim experiments, one module per chapter (``chNN_topic.py``); imported by ``load_claims``."""
