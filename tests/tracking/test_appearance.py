"""The appearance CNN: trained on some shapes sequences, it separates unseen objects' identities."""

from __future__ import annotations

import numpy as np
import torch

from deepnotes.data.shapes import ShapesSequence
from deepnotes.metrics import roc_auc
from deepnotes.tracking.appearance import crops, sequence_crops, train_appearance


def test_embedding_separates_identities_of_unseen_objects():
    torch.set_num_threads(1)
    train = [ShapesSequence(num_frames=6, seed=s, image_size=64, min_size=12, max_size=32) for s in range(4)]
    net = train_appearance(train, steps=40, batch_size=32)
    test = [ShapesSequence(num_frames=6, seed=100 + s, image_size=64, min_size=12, max_size=32) for s in range(2)]
    x, y = sequence_crops(test)
    with torch.no_grad():
        e = net.embed(x)
    assert torch.allclose(e.norm(dim=1), torch.ones(len(e)), atol=1e-5)
    i, j = torch.triu_indices(len(y), len(y), 1)
    same = (y[i] == y[j]).numpy().astype(int)
    # the chance level is 0.5: crops of one object must be nearer to each other than to others
    assert roc_auc(same, (e[i] * e[j]).sum(1).numpy()) > 0.8


def test_crops_are_resized_and_clipped_to_the_frame():
    frame = torch.rand(3, 20, 30)
    out = crops(frame, np.array([[-5, -5, 10, 8], [25, 15, 40, 30]]), size=12)
    assert out.shape == (2, 3, 12, 12)
    assert crops(frame, np.zeros((0, 4))).shape == (0, 3, 24, 24)
