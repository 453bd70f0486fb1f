"""Downstream metrics: group metrics against hand-computed answers and fairlearn, the
train-on-real control, labels carried by a family's samples, resume, and refused configs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from killed import killed_at

from autophagy.config import ConfigError
from autophagy.data import load_dataset
from autophagy.data.labelled import split_labels
from autophagy.loop import EvalSettings, LoopSettings, run_cell
from autophagy.metrics import EvalContext, evaluate
from autophagy.metrics.downstream import classification_scores, group_scores
from autophagy.models import GaussianMixture
from autophagy.policies import parse_policy
from autophagy.run.checks import check_config
from autophagy.store import CellStore
from configs import config_with

fm = pytest.importorskip("fairlearn.metrics")

# 8 people: label, prediction, group. Worked by hand below.
Y = np.array([1, 1, 0, 0, 1, 0, 1, 0])
P = np.array([1, 0, 0, 1, 1, 0, 0, 0])
G = np.array([0, 0, 0, 0, 1, 1, 1, 1])


def test_group_metrics_equal_the_hand_computed_answer_and_fairlearn():
    out = group_scores(Y, P, G)
    # group 0: correct on rows 0, 2 -> 2/4; group 1: correct on rows 4, 5, 7 -> 3/4
    assert out["group_accuracy_0"] == pytest.approx(0.5)
    assert out["group_accuracy_1"] == pytest.approx(0.75)
    # cells (label, group): (1,0) rows 0,1 -> 1/2; (0,0) rows 2,3 -> 1/2; (1,1) rows 4,6 -> 1/2;
    # (0,1) rows 5,7 -> 1; worst 0.5, gap 0.5
    assert out["worst_group_accuracy"] == pytest.approx(0.5)
    assert out["accuracy_gap"] == pytest.approx(0.5)
    # selection rates: group 0 predicts 1 on 2/4, group 1 on 1/4 -> DP difference 0.25
    assert out["dp_difference"] == pytest.approx(0.25)
    # TPR: group 0 1/2, group 1 1/2 -> 0; FPR: group 0 1/2, group 1 0/2 -> 0.5; EO = 0.5
    assert out["eo_difference"] == pytest.approx(0.5)
    assert out["dp_difference"] == fm.demographic_parity_difference(Y, P, sensitive_features=G)
    assert out["eo_difference"] == fm.equalized_odds_difference(Y, P, sensitive_features=G)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_metrics_equal_fairlearn_s_own_functions_on_random_arrays(seed):
    """group_scores reads the differences off two shared MetricFrames; they must be what
    fairlearn's own difference functions give, three groups and uneven sizes included."""
    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    g = rng.choice(3, 300, p=[0.6, 0.3, 0.1])
    out = group_scores(y, p, g)
    assert out["dp_difference"] == pytest.approx(
        fm.demographic_parity_difference(y, p, sensitive_features=g), abs=1e-12)
    assert out["eo_difference"] == pytest.approx(
        fm.equalized_odds_difference(y, p, sensitive_features=g), abs=1e-12)
    cells = fm.MetricFrame(metrics=lambda a, b: float(np.mean(a == b)), y_true=y, y_pred=p,
                           sensitive_features={"label": y, "group": g})
    assert out["worst_group_accuracy"] == pytest.approx(cells.group_min(), abs=1e-12)
    for k in range(3):
        assert out[f"group_accuracy_{k}"] == pytest.approx(np.mean(y[g == k] == p[g == k]))


def test_classification_scores_by_hand():
    out = classification_scores(Y, P)
    assert out["accuracy"] == pytest.approx(5 / 8)
    # recall of class 1: rows 0,1,4,6 -> predicted 1 on 0,4: 1/2; class 0: rows 2,3,5,7 -> 3/4
    assert out["worst_class_recall"] == pytest.approx(0.5)
    assert out["balanced_accuracy"] == pytest.approx(0.625)


def test_multiclass_labels_get_no_parity_differences():
    out = group_scores([0, 1, 2, 2], [0, 1, 2, 1], [0, 0, 1, 1])
    assert "dp_difference" not in out and out["group_accuracy_1"] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def toy():
    return load_dataset("minority_modes", n_train=400, n_test=600, seed=0, minority=0.2)


NAMES = ["accuracy", "balanced_accuracy", "worst_class_recall", "worst_group_accuracy",
         "accuracy_gap", "dp_difference", "eo_difference"]


def _ctx(dataset, samples, train, downstream):
    return EvalContext(model=None, samples=samples, held_out=dataset.test, dataset=dataset,
                       rng=np.random.default_rng(0), train=train, downstream=downstream)


@pytest.mark.parametrize("classifier", ["logistic", "mlp"])
def test_train_on_synthetic_equals_train_on_real_when_the_samples_are_real(toy, classifier):
    ctx = _ctx(toy, toy.train, toy.train, {"classifier": classifier})
    names = [f"{p}_{k}" for p in ("tstr", "trainset") for k in NAMES]
    out = evaluate(names, ctx)
    for key in NAMES:
        assert out[f"tstr_{key}"] == out[f"trainset_{key}"]
    if classifier == "logistic":  # an independent fit: scikit-learn on the feature columns
        from sklearn.linear_model import LogisticRegression

        y, _ = split_labels(toy, "train")
        pred = LogisticRegression(max_iter=500).fit(toy.train[:, :2], y).predict(toy.test[:, :2])
        y_test, g_test = split_labels(toy, "test")
        assert out["tstr_accuracy"] == pytest.approx(np.mean(pred == y_test))
        assert out["tstr_dp_difference"] == pytest.approx(
            fm.demographic_parity_difference(y_test, pred, sensitive_features=g_test))
        # a linear boundary cannot serve the flipped minority: its cells are the worst
        assert out["tstr_worst_group_accuracy"] < 0.5 < out["tstr_accuracy"]


def test_shares_expand_per_group_and_sum_to_one(toy):
    out = evaluate(["group_shares", "label_shares", "minority_share"],
                   _ctx(toy, toy.train, None, {}))
    assert set(out) == {"group_share_0", "group_share_1", "label_share_0", "label_share_1",
                        "minority_share"}
    assert out["group_share_0"] + out["group_share_1"] == pytest.approx(1.0)
    _, g = split_labels(toy, "train")
    assert out["group_share_1"] == pytest.approx(np.mean(g == 1))
    assert out["minority_share"] == pytest.approx(np.mean(g == 1))  # the minority cells


def test_a_mixture_s_samples_carry_the_labels_of_where_they_are(toy):
    model = GaussianMixture(n_components=4).fit(toy.train, rng=np.random.default_rng(0))
    x = model.sample(2000, rng=np.random.default_rng(1))
    label = np.rint(x[:, 2]).clip(0, 1)
    # the true label of a point is that of its nearest mode (majority below, minority above)
    right = x[:, 0] > 0
    up = x[:, 1] > 1.5
    truth = np.where(up, ~right, right).astype(float)
    assert np.mean(label == truth) > 0.97


InterruptAt = killed_at(GaussianMixture)


def test_resume_after_a_kill_gives_identical_downstream_metrics(tmp_path, toy):
    loop = LoopSettings(3, seed=2)
    ev = EvalSettings(metrics=("tstr_accuracy", "tstr_worst_group_accuracy", "trainset_accuracy",
                               "trainset_dp_difference", "group_shares", "w2"),
                      n_samples=300)
    whole = run_cell(GaussianMixture(n_components=4), toy, parse_policy("mixed:0.5"), loop, ev)
    store = CellStore(tmp_path / "cell")
    with pytest.raises(KeyboardInterrupt):
        run_cell(InterruptAt(3, n_components=4), toy, parse_policy("mixed:0.5"), loop, ev,
                 store=store)
    resumed = run_cell(GaussianMixture(n_components=4), toy, parse_policy("mixed:0.5"), loop, ev,
                       store=store)
    assert set(whole.metrics["metric"]) >= {"trainset_dp_difference", "group_share_1"}
    pd.testing.assert_frame_equal(whole.metrics, resumed.metrics)


def test_downstream_metrics_do_not_move_the_training_trajectory(toy):
    loop = LoopSettings(2, seed=1)
    plain = run_cell(GaussianMixture(n_components=4), toy, parse_policy("fully_synthetic"), loop,
                     EvalSettings(metrics=("w2",), n_samples=300))
    more = run_cell(GaussianMixture(n_components=4), toy, parse_policy("fully_synthetic"), loop,
                    EvalSettings(metrics=("w2", "tstr_accuracy", "trainset_eo_difference"),
                                 n_samples=300))
    w2 = more.metrics[more.metrics["metric"] == "w2"].reset_index(drop=True)
    pd.testing.assert_frame_equal(plain.metrics, w2)


BASE = {"data": {"name": "moons", "n_train": 50, "n_test": 50},
        "loop": {"generations": 1, "policies": {"fully_synthetic": {}}},
        "eval": {"metrics": ["w2"]}, "run": {"executor": "inline"}}


@pytest.mark.parametrize(("fields", "message"), [
    ({"eval__metrics": ["tstr_accuracy"]},
     "eval.metrics: 'tstr_accuracy' needs class labels, which dataset 'moons' lacks; datasets "
     "with class labels: digits, mnist5k, cifar10, coloured_digits"),
    ({"eval__metrics": ["tstr_worst_group_accuracy"],
      "data__name": "digits", "data__n_test": 100},
     "eval.metrics: 'tstr_worst_group_accuracy' needs a group attribute, which dataset "
     "'digits' lacks; datasets with a group attribute: coloured_digits, coloured_mnist, "
     "minority_modes"),
    ({"eval__metrics": ["tstr_accuracy"], "data__name": "minority_modes",
      "eval__downstream": {"labels": "annotator"}},
     "eval.downstream.labels: the annotator labels images"),
])
def test_bad_downstream_configs_stop_before_anything_runs(fields, message):
    with pytest.raises(ConfigError) as err:
        check_config(config_with(BASE, **fields))
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_the_annotator_labels_coloured_digits_and_their_colour(tmp_path, monkeypatch):
    from autophagy.metrics.classifier import clear_classifier_memo
    from autophagy.metrics.labelling import labelled

    monkeypatch.setenv("AUTOPHAGY_CACHE", str(tmp_path))
    clear_classifier_memo()
    ds = load_dataset("coloured_digits", n_train=1000, n_test=500, seed=0, target="digit")
    ctx = _ctx(ds, ds.test, ds.train, {"classifier": "logistic"})
    _, y, g = labelled(ctx).label(ds.test)
    y_true, g_true = split_labels(ds, "test")
    assert np.mean(y == y_true) > 0.9  # ten digits, a small CNN trained once on 1,000
    assert np.mean(g == g_true) > 0.99  # the colour is one channel
    out = evaluate(["tstr_accuracy", "trainset_accuracy", "annotator_accuracy"],
                   _ctx(ds, ds.train, ds.train, {}))
    assert out["tstr_accuracy"] == out["trainset_accuracy"] > 0.85
    assert out["annotator_accuracy"] == pytest.approx(np.mean(y == y_true))
    clear_classifier_memo()


def test_a_training_set_s_real_rows_keep_their_true_labels(tmp_path, monkeypatch):
    """trainset_* with the annotator: real rows are matched by value and keep their own labels
    and groups; only the other rows are the annotator's."""
    from autophagy.metrics.classifier import clear_classifier_memo
    from autophagy.metrics.labelling import labelled

    monkeypatch.setenv("AUTOPHAGY_CACHE", str(tmp_path))
    clear_classifier_memo()
    ds = load_dataset("coloured_digits", n_train=600, n_test=300, seed=0, target="digit")
    noise = np.random.default_rng(0).uniform(-1, 1, (50, *ds.shape)).astype(np.float32)
    train = np.concatenate([ds.train.astype(np.float64), noise])  # a float64 mix, as GMMs give
    ctx = _ctx(ds, ds.test, train, {"classifier": "logistic"})
    _, y, _ = labelled(ctx).of("trainset")
    y_true, _ = split_labels(ds, "train")
    assert np.array_equal(y[:600], y_true)  # exact: no annotator error on real rows
    assert np.array_equal(y[600:], labelled(ctx).annotator("labels").predict(noise))
    clear_classifier_memo()


def test_group_metrics_without_fairlearn_say_how_to_install_it(monkeypatch):
    import sys

    from autophagy.errors import InputError

    monkeypatch.setitem(sys.modules, "fairlearn.metrics", None)  # import fails as if absent
    with pytest.raises(InputError, match=r"^the group metrics need fairlearn: pip install "):
        group_scores(Y, P, G)
