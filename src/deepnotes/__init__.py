"""deepnotes: a runnable, verified companion to deep-learning theory.

Every method of the notes is implemented on PyTorch, tested against a production reference,
measured in the lab (``deepnotes lab``) and timed against its reference (``deepnotes bench``).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
