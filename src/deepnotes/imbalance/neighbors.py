"""The samplers' neighbour search: :mod:`deepnotes.classic.neighbors`, re-exported here.

:func:`kneighbors` is exact (a certified bfloat16/float32 filter, then float64 ranking);
:func:`kneighbors_exact` is the plain float64 version. Both match
``sklearn.neighbors.NearestNeighbors``.
"""

from deepnotes.classic.neighbors import kneighbors, kneighbors_exact, over_row_ranges

__all__ = ["kneighbors", "kneighbors_exact", "over_row_ranges"]
