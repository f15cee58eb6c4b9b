"""The last layer's view of the data: penultimate features, their nearest neighbours, 2-D embeddings.

The penultimate features of a classifier are the input of its last ``nn.Linear`` (the vector the
class scores are computed from). Images close in that space are close in what the network has
learned, not in raw pixels: :func:`nearest_neighbors` compares both. :func:`embed_2d` projects
the features to two dimensions with scikit-learn's ``PCA`` or ``TSNE`` for plotting by class.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_choice, check_int, check_tensor
from deepnotes.explain._model import check_images, inspecting, resolve_layer


def _last_linear(model: nn.Module) -> str:
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ValueError(f"model {type(model).__name__} has no nn.Linear layer; pass layer= to choose the features")
    return names[-1]


@torch.no_grad()
def penultimate_features(
    model: nn.Module, x: torch.Tensor, layer: str | nn.Module | None = None, batch_size: int = 512
) -> torch.Tensor:
    """Flattened features ``(N, D)``: the input of ``layer`` (default: the last ``nn.Linear``).

    The features are taken at the *input* of that layer, i.e. after everything that precedes the
    classifier (pooling, flattening, dropout in the mode the model is in).
    """
    check_images(model, x)
    name, module = resolve_layer(model, _last_linear(model) if layer is None else layer)
    batch_size = check_int("batch_size", batch_size, min=1)
    seen: list[torch.Tensor] = []
    feats = []
    with inspecting(model) as hooks:
        hooks.handles.append(module.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].flatten(1))))
        for chunk in x.split(batch_size):
            seen.clear()
            model(chunk)
            if not seen:
                raise ValueError(f"layer {name!r} was not used in the model's forward pass")
            feats.append(seen[-1])
    return torch.cat(feats)

def nearest_neighbors(query: torch.Tensor, bank: torch.Tensor, k: int = 5, exclude_self: bool = False) -> torch.Tensor:
    """Indices ``(M, k)`` of the ``k`` rows of ``bank`` closest (Euclidean) to each row of ``query``.

    Rows of any shape are flattened, so ``query``/``bank`` can be images (pixel space) or feature
    vectors. With ``exclude_self`` query ``i`` is bank row ``i`` and is never its own neighbour.
    Ties: the lower index first (as :func:`deepnotes.classic.kneighbors_exact`).
    """
    from deepnotes.classic.neighbors import kneighbors_exact

    check_tensor("query", query, floating=True, finite=True, nonempty=True)
    check_tensor("bank", bank, floating=True, finite=True, nonempty=True)
    q, b = query.flatten(1), bank.flatten(1)
    if q.shape[1] != b.shape[1]:
        raise ValueError(f"query rows have {q.shape[1]} values but bank rows have {b.shape[1]}")
    limit = len(b) - 1 if exclude_self else len(b)
    k = check_int("k", k, min=1, max=limit)
    self_index = None
    if exclude_self:
        if len(q) != len(b):
            raise ValueError("exclude_self needs query and bank to be the same rows")
        self_index = torch.arange(len(q))
    return kneighbors_exact(q.double(), b.double(), k, self_index=self_index)


def neighbor_label_agreement(neighbors: torch.Tensor, labels: torch.Tensor, query_labels: torch.Tensor) -> float:
    """Fraction of neighbours whose label equals their query's label."""
    return float((labels[neighbors] == query_labels[:, None]).double().mean())


def embed_2d(
    features: torch.Tensor, method: str = "tsne", random_state: int = 0, perplexity: float = 30.0, max_iter: int = 1000
):
    """Project ``(N, D)`` features to ``(N, 2)`` with scikit-learn's ``PCA`` or ``TSNE`` (numpy array).

    t-SNE's perplexity is capped at ``(N − 1) / 3`` so that small sets work; PCA ignores it and
    ``max_iter`` (t-SNE's optimization steps, at least 250).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    check_tensor("features", features, ndim=2, finite=True, nonempty=True)
    check_choice("method", method, ("pca", "tsne"))
    if len(features) < 3:
        raise ValueError(f"features must have at least 3 rows to embed, got {len(features)}")
    data = features.detach().double().cpu().numpy()
    if method == "pca":
        return PCA(n_components=2, random_state=random_state).fit_transform(data)
    perplexity = min(float(perplexity), (len(data) - 1) / 3)
    max_iter = check_int("max_iter", max_iter, min=250)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state, max_iter=max_iter)
    return tsne.fit_transform(data)
