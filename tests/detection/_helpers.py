"""What the detector tests share: a small batch of ``shapes`` images, an image without objects, a
few Adam steps on one batch, running a model in eval mode, the detector output contract, the bad
input every detector rejects, and comparing losses and gradients with a reference module."""

from __future__ import annotations

import pytest
import torch

from deepnotes.data import shapes
from deepnotes.train.tasks import get_task


def no_objects() -> dict[str, torch.Tensor]:
    """The target of an image without objects."""
    return {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}


def few_images(n=4, size=32, *, max_objects=2, min_size=8, max_size=16, seed=0, masks=False):
    """The first ``n`` training images of a small ``shapes`` set, batched by the detect task's collate:
    images ``[n, 3, size, size]`` and targets with ``boxes`` and ``labels`` (and ``masks`` if asked)."""
    splits = shapes(seed=seed, n_train=n, n_val=1, n_test=1, image_size=size, max_objects=max_objects,
                    min_size=min_size, max_size=max_size)
    images, targets = get_task("detect").collate([splits.train[i] for i in range(n)])
    keys = ("boxes", "labels", "masks") if masks else ("boxes", "labels")
    return images, [{k: t[k] for k in keys} for t in targets]


def train_steps(model, images, targets, steps, lr, *, loss_names=None):
    """``steps`` Adam steps (learning rate ``lr``) of ``model`` in training mode on one batch.

    Returns the total loss of each step (before its update) and each step's loss terms as floats.
    With ``loss_names``, every step's terms must be exactly these names.
    """
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses, history = [], []
    for _ in range(steps):
        model.train()
        terms = model(images, targets)
        if loss_names is not None:
            assert set(terms) == set(loss_names), sorted(terms)
        loss = sum(terms.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        history.append({k: float(v.detach()) for k, v in terms.items()})
    return losses, history


def detect(model, images):
    """The model's detections for ``images``, in eval mode (it stays there) without gradients."""
    model.eval()
    with torch.no_grad():
        return model(images)


def assert_detections(out, n_images, num_classes, image_size, max_dets=None, min_dets=0):
    """The detector output contract: a list with one dict per image of exactly boxes, scores and
    labels; ``min_dets <= K <= max_dets`` detections; boxes ``[K, 4]`` inside the square image with
    ``x2 >= x1`` and ``y2 >= y1``; int64 labels ``[K]`` in ``1..num_classes``; scores in [0, 1], highest
    first."""
    assert isinstance(out, list) and len(out) == n_images
    for i, det in enumerate(out):
        assert set(det) == {"boxes", "scores", "labels"}, (i, sorted(det))
        boxes, scores, labels = det["boxes"], det["scores"], det["labels"]
        k = len(scores)
        assert min_dets <= k and (max_dets is None or k <= max_dets), (i, k)
        assert boxes.shape == (k, 4) and labels.shape == (k,), i
        assert labels.dtype == torch.int64 and ((labels >= 1) & (labels <= num_classes)).all(), i
        assert (boxes >= 0).all() and (boxes <= image_size).all(), i
        assert (boxes[:, 2:] >= boxes[:, :2]).all(), i
        assert (scores[:-1] >= scores[1:]).all() and ((scores >= 0) & (scores <= 1)).all(), i


def assert_rejects(model, images, targets, *, wrong_size, bad_label, outside=(-6.0, 20.0, 12.0, 40.0)):
    """``model`` (in training mode) rejects the bad input every detector rejects: images of side
    ``wrong_size``, missing targets, the label ``bad_label``, a box with ``x2 < x1`` and one target
    dict too few each raise a ``ValueError`` naming the problem; a box ``outside`` reaching past the
    image trains (finite loss terms). ``images`` and ``targets`` are a valid batch of two or more."""
    with pytest.raises(ValueError, match="images must have shape"):
        model(torch.rand(len(images), 3, wrong_size, wrong_size), targets)
    with pytest.raises(ValueError, match="targets are required"):
        model(images)
    with pytest.raises(ValueError, match="labels"):
        model(images, [targets[0], {"boxes": torch.zeros(1, 4), "labels": torch.tensor([bad_label])}])
    with pytest.raises(ValueError, match="x2 >= x1"):
        model(images, [targets[0], {"boxes": torch.tensor([[5.0, 5.0, 2.0, 9.0]]), "labels": torch.tensor([1])}])
    past_the_border = {"boxes": torch.tensor([outside]), "labels": torch.tensor([1])}
    assert all(torch.isfinite(v) for v in model(images, [targets[0], past_the_border]).values())
    with pytest.raises(ValueError, match="one dict per image"):
        model(images, targets[:1])


def assert_loss_terms_close(ours, ref, names, inputs, *, loss_tol, grad_tol):
    """Our loss terms against a reference's named differently (``names``: our term -> its term, in
    the order their totals are summed): each pair is close (``loss_tol = (rtol, atol)``), and so are
    the gradients of the two totals with respect to ``inputs`` (``grad_tol``)."""
    g_ours = torch.autograd.grad(sum(ours.values()), inputs)
    g_ref = torch.autograd.grad(sum(ref[theirs] for theirs in names.values()), inputs)
    for k, theirs in names.items():
        torch.testing.assert_close(ours[k], ref[theirs], rtol=loss_tol[0], atol=loss_tol[1])
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=grad_tol[0], atol=grad_tol[1])


def assert_losses_and_gradients_close(ours, theirs, got, want, *, loss_tol, grad_tol):
    """Each loss term of ``got`` is close to ``want``'s (``loss_tol = (rtol, atol)``), and after a
    backward pass of each total every parameter's gradient of ``ours`` is close to the same
    parameter's of ``theirs`` (``grad_tol``); the two modules list their parameters in one order."""
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=loss_tol[0], atol=loss_tol[1])
    sum(got.values()).backward()
    sum(want.values()).backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=grad_tol[0], atol=grad_tol[1], msg=name)
