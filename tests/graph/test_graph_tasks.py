"""The node, graph and link tasks through the Trainer and the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from deepnotes.core.registry import TASKS
from deepnotes.graph.datasets import graph_families_data, karate, sbm_link
from deepnotes.graph.models import GNN
from deepnotes.train import Trainer


def test_tasks_are_registered():
    assert {"node", "graph", "link"} <= set(TASKS.names())


def test_node_task_trains_gcn_on_karate(tmp_path):
    torch.manual_seed(0)
    s = karate(seed=0)
    model = GNN("gcn", 34, 16, 2)
    trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=0.01), s.train, val_data=s.val, task="node",
                      epochs=60, batch_size=1, seed=0, out_dir=tmp_path, progress=False)
    trainer.fit()
    metrics = trainer.evaluate(s.test)
    assert metrics["accuracy"] >= 0.8  # 18 test nodes; a 2-layer GCN reaches 0.94–1.0 on seeds 0–2


def test_node_task_accuracy_counts_only_masked_nodes():
    from deepnotes.train.tasks.node import NodeClassificationTask

    s = karate(seed=1)
    g = s.test[0]

    class Oracle(torch.nn.Module):
        def forward(self, graph):
            out = torch.zeros(graph.num_nodes, 2)
            out[torch.arange(graph.num_nodes), graph.y] = 1.0
            out[~graph.mask] = torch.tensor([0.0, 1.0])  # wrong or right outside the mask: ignored
            return out

    task = NodeClassificationTask()
    sums = task._sums(Oracle()(g), g, 0.0)  # the counts behind the accuracy
    assert sums["correct"] == sums["count"] == 18


def test_graph_task_gin_learns_families(tmp_path):
    torch.manual_seed(0)
    s = graph_families_data(seed=0, n_graphs=90)
    model = GNN("gin", 1, 16, 3, num_layers=2, dropout=0.0, readout="add")
    trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=0.01), s.train, val_data=s.val, task="graph",
                      epochs=25, batch_size=16, seed=0, out_dir=tmp_path, progress=False)
    trainer.fit()
    assert trainer.evaluate(s.test)["accuracy"] >= 0.8


def test_link_task_beats_chance(tmp_path):
    torch.manual_seed(0)
    s = sbm_link(seed=0)
    model = GNN("gcn", 16, 32, 16, dropout=0.0)
    trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=0.01), s.train, val_data=s.val, task="link",
                      epochs=50, batch_size=1, seed=0, out_dir=tmp_path, progress=False)
    trainer.fit()
    # block membership alone caps the AUC near 0.8 here; seeds 0-2 reach 0.80-0.83
    assert trainer.evaluate(s.test)["auc"] > 0.7


def _link_run(out_dir, epochs, resume=False):
    torch.manual_seed(0)
    s = sbm_link(seed=0)
    model = GNN("sage", 16, 8, 8, dropout=0.0)
    trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=0.01), s.train, task="link",
                      epochs=epochs, batch_size=1, seed=0, out_dir=out_dir, progress=False)
    trainer.fit(resume=resume)
    return model


def test_link_task_resumes_its_negative_sampler_exactly(tmp_path):
    straight = _link_run(tmp_path / "a", 4)
    _link_run(tmp_path / "b", 2)
    resumed = _link_run(tmp_path / "b", 4, resume=True)
    for p, q in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("task,model,data", [("node", "gcn", "karate"), ("node", "sage", "sbm"),
                                             ("graph", "gin", "graph-families")])
def test_cli_train(tmp_path, task, model, data):
    from deepnotes.cli import main

    out = tmp_path / "run"
    rc = main(["train", "--task", task, "--model", model, "--data", data, "--epochs", "3", "--lr", "0.01",
               "--out", str(out), "--no-progress"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["test_accuracy"] <= 1.0


def test_cli_train_link(tmp_path):
    from deepnotes.cli import main

    out = tmp_path / "run"
    assert main(["train", "--task", "link", "--model", "gcn", "--data", "sbm-link", "--epochs", "3",
                 "--out", str(out), "--no-progress"]) == 0
    assert 0.0 <= json.loads((out / "summary.json").read_text())["test_auc"] <= 1.0
