import json

import optuna
import pytest

from deepnotes.cli import main
from deepnotes.train import tune

pytestmark = pytest.mark.usefixtures("one_thread")

BASE = ["tune", "--model", "mlp", "--data", "digits", "--param", "lr=loguniform:1e-3:1e-1",
        "--param", "hidden=int:8:24", "--epochs", "1", "--batch-size", "128", "--sampler", "random",
        "--pruner", "none"]


def _n_trials(url, name="search"):
    return len(optuna.load_study(study_name=name, storage=url).trials)


def test_tune_resumes_the_same_sqlite_study_and_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "run"
    url = f"sqlite:///{(out / 'study.db').resolve()}"
    assert main([*BASE, "--trials", "3", "--out", str(out)]) == 0
    assert _n_trials(url) == 3
    assert main([*BASE, "--trials", "2", "--out", str(out)]) == 0
    study = optuna.load_study(study_name="search", storage=url)
    assert len(study.trials) == 5 and all(t.state.name == "COMPLETE" for t in study.trials)
    # the resumed random search samples new points, not the first run's again
    assert len({t.params["lr"] for t in study.trials}) == 5
    best = json.loads((out / "best-search.json").read_text())
    assert best["trials"] == 5 and best["best_value"] == pytest.approx(study.best_value)
    assert (out / "trials-search.png").stat().st_size > 0
    before = (out / "study.db").read_bytes()
    # an empty or inverted range, an unknown kind or model argument: refused before the storage is touched
    for bad, msg in (("lr=loguniform:1e-2:1e-2", "is empty"), ("lr=uniform:0.5:0.1", "is inverted"),
                     ("lr=loguniform:0:1", "needs low > 0"), ("lr=gauss:0:1", "kind in --param"),
                     ("width=int:1:4", "neither a trainer setting")):
        args = [a if a != "lr=loguniform:1e-3:1e-1" else bad for a in BASE]
        assert main([*args, "--trials", "1", "--out", str(out)]) == 2
        assert msg in capsys.readouterr().err
    assert (out / "study.db").read_bytes() == before and _n_trials(url) == 5


def test_corrupt_or_unreachable_storage_is_a_clear_error(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 50)
    assert main([*BASE, "--trials", "1", "--storage", f"sqlite:///{corrupt}", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot open storage" in err and "corrupt.db" in err
    assert corrupt.read_bytes() == b"this is not a database" * 50
    missing = f"sqlite:///{tmp_path}/no/such/dir/x.db"
    assert main([*BASE, "--trials", "1", "--storage", missing, "--out", str(tmp_path)]) == 2
    assert "cannot open storage" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cannot open storage"):
        tune.open_storage("not-a-url")


def test_parse_and_grid_and_journal_storage(tmp_path):
    p = tune.parse_param("lr=loguniform:1e-4:1e-1")
    assert p.log and p.grid(4) == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    assert tune.parse_param("h=int:1:4").grid(4) == [1, 2, 3, 4]
    assert tune.parse_param("o=choice:sgd,adam,3").choices == ("sgd", "adam", 3)
    for spec, msg in (("lr", "must look like"), ("lr=uniform:1", "expected uniform:LOW:HIGH"),
                      ("lr=uniform:a:1", "not a number"), ("o=choice:", "no choices"),
                      ("h=int:1.5:3", "whole numbers")):
        with pytest.raises(ValueError, match=msg):
            tune.parse_param(spec)
    with pytest.raises(ValueError, match="given twice"):
        tune.make_space([p, p])
    with pytest.raises(ValueError, match="search space is empty"):
        tune.make_space([])
    space = tune.make_space([tune.parse_param("x=uniform:0:1"), tune.parse_param("k=choice:a,b")])
    storage = tune.open_storage(str(tmp_path / "journal.log"))
    study = tune.run_search(lambda trial, prm: (prm["x"] - 0.3) ** 2 + (prm["k"] == "b"), space,
                            storage=storage, study_name="grid", n_trials=20, sampler="grid", grid_points=3)
    # the grid sampler visits the 3 x 2 grid exactly once, then stops
    assert sorted((t.params["x"], t.params["k"]) for t in study.trials) == sorted(
        (x, k) for x in (0.0, 0.5, 1.0) for k in ("a", "b"))
    with pytest.raises(ValueError, match="sampler must be one of"):
        tune.make_sampler("anneal", space)


def test_refine_space_shrinks_to_the_best_trials():
    space = tune.make_space([tune.parse_param("lr=loguniform:1e-5:1"), tune.parse_param("k=choice:a,b,c")])
    study = optuna.create_study()
    for lr, k, value in ((1e-5, "a", 5.0), (1e-3, "b", 1.0), (3e-3, "b", 0.5), (1e-1, "c", 4.0)):
        study.add_trial(optuna.trial.create_trial(
            params={"lr": lr, "k": k}, value=value,
            distributions={"lr": optuna.distributions.FloatDistribution(1e-5, 1, log=True),
                           "k": optuna.distributions.CategoricalDistribution(["a", "b", "c"])}))
    fine = tune.refine_space(study, space, top_k=2, widen=0.0)
    assert fine["lr"].low == pytest.approx(1e-3) and fine["lr"].high == pytest.approx(3e-3)
    assert fine["k"].choices == ("b",)
    with pytest.raises(ValueError, match="no completed trial"):
        tune.refine_space(optuna.create_study(), space)


def test_median_pruner_stops_bad_trials():
    space = tune.make_space([tune.parse_param("x=uniform:0:1")])
    storage = optuna.storages.InMemoryStorage()

    def objective(trial, p):
        # the first two trials are good; later ones report worse intermediate values and get pruned
        bad = trial.number >= 2
        for step in range(1, 5):
            trial.report(10.0 + step if bad else 1.0 / step, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 10.0 if bad else 0.25

    study = tune.run_search(objective, space, storage=storage, study_name="p", n_trials=5, sampler="random")
    states = [t.state.name for t in study.trials]
    assert states[:2] == ["COMPLETE", "COMPLETE"] and states[2:] == ["PRUNED"] * 3
    assert tune.plot_trials(study, space) is not None


def test_two_worker_processes_share_one_journal_storage(tmp_path):
    journal = tmp_path / "shared.log"
    assert main([*BASE, "--trials", "2", "--processes", "2", "--storage", str(journal), "--out", str(tmp_path)]) == 0
    study = optuna.load_study(study_name="search", storage=tune.open_storage(str(journal)))
    assert len(study.trials) == 2 and all(t.state.name == "COMPLETE" for t in study.trials)
