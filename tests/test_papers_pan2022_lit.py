"""LIT's variant table: digits accuracy is the mean over several initialisations."""

import statistics

import pytest
import torch

from attnkit.papers import pan2022_lit as paper
from attnkit.train import TrainConfig, accuracy, cross_entropy_loss, evaluate, fit


@pytest.fixture
def run(monkeypatch, tmp_path, single_thread):
    monkeypatch.setenv("ATTNKIT_CACHE_DIR", str(tmp_path))
    return paper.setup("smoke", seed=3)


def test_init_seeds_start_at_the_run_seed_and_only_digits_gets_several(run):
    assert run.size["digits_inits"] == 2
    assert paper.init_seeds(run, "digits") == [3, 1003]
    assert paper.init_seeds(run, "pairs") == [3]


def test_digits_accuracy_is_the_mean_over_independently_trained_initialisations(run):
    variant = paper.LIT_FIXED
    trained = paper.train_variants(run, variants=(variant,), progress=False)

    # Oracle: train each initialisation by hand, without the cache.
    task, size = run.tasks["digits"], run.size
    by_hand = []
    for init in (3, 1003):
        model = paper.build(variant, task.num_classes, init, size["offset_lr_mult"])
        config = TrainConfig(
            epochs=size["epochs"],
            batch_size=size["batch_size"],
            lr=size["lr"],
            optimizer="adamw",
            weight_decay=0.05,
            seed=init,
        )
        fit(
            model,
            task.train,
            loss_fn=cross_entropy_loss,
            config=config,
            cache=False,
            progress=False,
        )
        by_hand.append(
            (model, evaluate(model, task.test, loss_fn=cross_entropy_loss, metric_fn=accuracy)[1])
        )

    first, second = (model for model, _ in by_hand)
    assert not torch.equal(first.head.weight, second.head.weight), "the two seeds trained one model"
    row = trained.table.loc[("digits", variant)]
    expected = [float(acc) for _, acc in by_hand]
    assert row.inits == 2
    assert expected[0] != expected[1], "pick a seed whose two initialisations differ in accuracy"
    assert row.accuracy == pytest.approx(sum(expected) / 2, abs=1e-9)
    assert row.accuracy_std == pytest.approx(statistics.stdev(expected), abs=1e-9)
    assert trained.table.loc[("pairs", variant)].inits == 1
    # The model kept for the figures is the first initialisation's.
    images = task.test[0][0][None]
    kept = trained.models["digits", variant]
    torch.testing.assert_close(kept(images), first(images))
