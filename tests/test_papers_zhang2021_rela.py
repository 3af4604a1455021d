"""attnkit.papers.zhang2021_rela: the quality gates and the sparsity table's baseline row."""

import pandas as pd
import pytest

from attnkit.papers.zhang2021_rela import SIZES, model_sizes, quality_gates, sizes, sparsity_table


def _table(token, exact):
    return pd.DataFrame(
        {
            "token_accuracy": [token],
            "sequence_accuracy": [exact],
            "sparsity": [0.0],
            "null_rate": [0.0],
        },
        index=["softmax"],
    )


def test_quality_gates_need_a_learned_model_below_the_ceiling():
    assert list(quality_gates(_table(0.95, 0.80)).values()) == [True, True]
    assert list(quality_gates(_table(0.80, 0.20)).values()) == [False, True]
    assert list(quality_gates(_table(0.999, 0.96)).values()) == [True, False]


def test_sparsity_table_adds_the_untrained_baseline():
    table = _table(0.9, 0.5).rename(index={"softmax": "rela"})
    stats = {"rela": {"encoder_sparsity": 0.4, "null_rate_per_layer": [0.1, 0.2]}}
    out = sparsity_table(table, stats, untrained=0.48)
    assert out.loc["untrained rela (baseline)", "sparsity"] == pytest.approx(0.48)
    assert out.loc["rela", "null_rate_L2"] == pytest.approx(0.2)


def test_sizes_and_model_sizes():
    assert model_sizes(sizes("quick"))["d_model"] == SIZES["quick"]["d_model"]
    with pytest.raises(ValueError, match="quick"):
        sizes("huge")
