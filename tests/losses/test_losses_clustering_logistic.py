"""K-means objective vs sklearn's inertia_; logistic regression vs sklearn's LogisticRegression."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from deepnotes.losses import LogisticRegression, kmeans_objective
from tests._reference import assert_same_maths


def _blobs(seed=0, n=120, d=3, k=4):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, (k, d))
    return centres[rng.integers(0, k, n)] + rng.normal(0, 1, (n, d))


def test_kmeans_objective_equals_sklearn_inertia():
    x = _blobs()
    km = KMeans(n_clusters=4, n_init=3, random_state=0).fit(x)
    xt, ct = torch.from_numpy(x), torch.from_numpy(km.cluster_centers_)
    labels = torch.from_numpy(km.labels_.astype(np.int64))
    assert_same_maths(kmeans_objective(xt, ct, labels).item(), km.inertia_)
    # nearest-centre assignment reproduces sklearn's labels at convergence
    assert_same_maths(kmeans_objective(xt, ct).item(), km.inertia_)


def test_kmeans_objective_gradient_and_slow_loop():
    x = torch.from_numpy(_blobs(seed=1, n=30)).requires_grad_()
    c = torch.from_numpy(_blobs(seed=2, n=4)).requires_grad_()
    loss = kmeans_objective(x, c)
    # slow reference: a loop over points
    d = [min(((x[i] - c[j]) ** 2).sum() for j in range(4)) for i in range(30)]
    assert_same_maths(loss, torch.stack(d).sum())
    assert torch.autograd.gradcheck(lambda a, b: kmeans_objective(a, b), (x, c))


def test_kmeans_objective_errors():
    x = torch.zeros(5, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="centers"):
        kmeans_objective(x, torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="labels"):
        kmeans_objective(x, x[:2], torch.tensor([0, 1, 2, 0, 0]))
    with pytest.raises(ValueError, match="labels"):
        kmeans_objective(x, x[:2], torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="labels"):
        kmeans_objective(x, x[:2], torch.zeros(5))
    with pytest.raises(ValueError, match="x"):
        kmeans_objective(torch.zeros(0, 2), x[:2])


def test_logistic_regression_matches_sklearn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    y = (x @ [1.0, -2.0, 0.5] + rng.normal(0, 1, 80) > 0).astype(int)
    sk = SkLogisticRegression().fit(x, y)
    m = LogisticRegression(3).double()
    with torch.no_grad():
        m.linear.weight.copy_(torch.from_numpy(sk.coef_))
        m.linear.bias.copy_(torch.from_numpy(sk.intercept_))
    xt = torch.from_numpy(x)
    assert_same_maths(m.predict_proba(xt), torch.from_numpy(sk.predict_proba(x)[:, 1]))
    assert torch.equal(m.predict(xt), torch.from_numpy(sk.predict(x).astype(np.int64)))
    assert_same_maths(m(xt), torch.from_numpy(sk.decision_function(x)))


def test_logistic_regression_threshold_boundary_and_errors():
    m = LogisticRegression(1, threshold=0.5).double()
    with torch.no_grad():
        m.linear.weight.fill_(1.0)
        m.linear.bias.fill_(0.0)
    x = torch.tensor([[-1.0], [0.0], [1e-12]], dtype=torch.float64)
    assert m.predict(x).tolist() == [0, 0, 1]  # p = 0.5 exactly is not above the threshold
    assert m.predict(torch.tensor([[1.0]], dtype=torch.float64), threshold=0.8).tolist() == [0]
    with pytest.raises(ValueError, match="threshold"):
        LogisticRegression(2, threshold=1.0)
    with pytest.raises(ValueError, match="threshold"):
        m.predict(x, threshold=0.0)
    with pytest.raises(ValueError, match="in_features"):
        LogisticRegression(0)
    with pytest.raises(ValueError, match="x"):
        m(torch.zeros(3, 2, dtype=torch.float64))
