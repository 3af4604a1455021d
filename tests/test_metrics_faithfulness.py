"""AOPC and deletion / insertion curves against a loop that builds every shortened sequence."""

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from attnkit.metrics import spearman
from attnkit.metrics_correlation import correlation_table
from attnkit.metrics_faithfulness import (
    FaithfulnessInputError,
    aopc,
    deletion_curve,
    insertion_curve,
)

pytestmark = pytest.mark.usefixtures("single_thread")

CLS, SEP, PAD = 1, 2, 0


def tiny_bert() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=32, max_position_embeddings=32, num_labels=3, initializer_range=0.4,
        attn_implementation="eager", pad_token_id=PAD,
    )  # fmt: skip
    return BertForSequenceClassification(config).eval()


def batch():
    """[CLS] w… [SEP] with 20, 11 and 4 words, right-padded, and random scores."""
    generator = torch.Generator().manual_seed(1)
    lengths = [20, 11, 4]
    ids = torch.full((3, 22), PAD)
    for b, n in enumerate(lengths):
        ids[b, : n + 2] = torch.tensor(
            [CLS, *torch.randint(3, 40, (n,), generator=generator).tolist(), SEP]
        )
    inputs = {
        "input_ids": ids,
        "attention_mask": (ids != PAD).long(),
        "token_type_ids": torch.zeros_like(ids),
    }
    scores = torch.rand(3, 22, generator=generator)
    scores[0, 5] = scores[0, 6]  # a tie: the earlier token ranks first
    return inputs, scores


def prob(model, tokens, target):
    ids = torch.tensor([tokens])
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    return logits.softmax(-1)[0, target].item()


@torch.no_grad()
def brute_force(model, inputs, scores, mode, bins):
    out = []
    for b in range(3):
        tokens = inputs["input_ids"][b][inputs["attention_mask"][b] == 1].tolist()
        words = list(range(1, len(tokens) - 1))  # positions that are not [CLS] / [SEP]
        ranked = sorted(words, key=lambda t: (-scores[b, t].item(), t))
        target = int(model(input_ids=torch.tensor([tokens])).logits.argmax())
        full = prob(model, tokens, target)
        values = []
        for q in bins:
            k = max(1, int(q * len(words) + 0.5))
            top = set(ranked[:k])
            if mode == "comprehensiveness":
                kept = [t for i, t in enumerate(tokens) if i not in top]
            else:
                kept = [t for i, t in enumerate(tokens) if i in top or i in (0, len(tokens) - 1)]
            values.append(full - prob(model, kept, target))
        out.append(sum(values) / len(values))
    return torch.tensor(out)


@pytest.mark.parametrize("mode", ["comprehensiveness", "sufficiency"])
def test_aopc_matches_a_loop_over_shortened_sequences(mode):
    model, (inputs, scores) = tiny_bert(), batch()
    bins = (0.01, 0.05, 0.1, 0.2, 0.5)
    ours = aopc(model, inputs, scores, mode=mode, special=[CLS, SEP], batch_size=7)
    expected = brute_force(model, inputs, scores, mode, bins)
    torch.testing.assert_close(ours.double(), expected.double(), atol=1e-5, rtol=1e-4)
    assert ours.abs().max() > 1e-3  # the check has signal
    special_mask = torch.isin(inputs["input_ids"], torch.tensor([CLS, SEP]))
    with_mask = aopc(model, {**inputs, "special_tokens_mask": special_mask}, scores, mode=mode)
    torch.testing.assert_close(with_mask, ours)


def test_curves_end_points_and_area():
    model, (inputs, scores) = tiny_bert(), batch()
    deletion = deletion_curve(model, inputs, scores, special=[CLS, SEP], steps=4)
    insertion = insertion_curve(model, inputs, scores, special=[CLS, SEP], steps=4)
    with torch.no_grad():
        logits = model(**inputs).logits
    full = logits.softmax(-1).gather(1, logits.argmax(-1, keepdim=True))[:, 0]
    torch.testing.assert_close(deletion.probs[:, 0], full)  # nothing deleted yet
    torch.testing.assert_close(insertion.probs[:, -1], full)  # everything inserted back
    torch.testing.assert_close(deletion.probs[:, -1], insertion.probs[:, 0])  # specials only
    p = deletion.probs
    expected = (p[:, :-1] + p[:, 1:]).sum(1) / 2 / 4
    torch.testing.assert_close(deletion.auc, expected)
    # a middle point against the loop: deleting the top half of the words
    comprehensiveness = aopc(
        model, inputs, scores, mode="comprehensiveness", bins=(0.5,), special=[CLS, SEP]
    )
    torch.testing.assert_close(full - comprehensiveness, deletion.probs[:, 2])


def test_bad_input():
    model, (inputs, scores) = tiny_bert(), batch()
    with pytest.raises(FaithfulnessInputError, match="special"):
        aopc(model, inputs, scores)
    with pytest.raises(FaithfulnessInputError, match="mode"):
        aopc(model, inputs, scores, mode="both", special=[CLS, SEP])
    with pytest.raises(FaithfulnessInputError, match="bins"):
        aopc(model, inputs, scores, bins=(0.0, 0.5), special=[CLS, SEP])
    with pytest.raises(FaithfulnessInputError, match="scores"):
        aopc(model, inputs, scores[:, :3], special=[CLS, SEP])
    with pytest.raises(FaithfulnessInputError, match="out of range"):
        aopc(model, inputs, scores, target=5, special=[CLS, SEP])


def test_correlation_table_per_layer():
    importance = torch.rand(4, 6)
    relevance = torch.rand(3, 4, 6)
    mask = torch.ones(4, 6, dtype=torch.bool)
    table, per_example = correlation_table({"m": relevance, "flat": importance}, importance, mask)
    assert list(table["layer"]) == [1, 2, 3, 1]
    torch.testing.assert_close(per_example[("m", 2)], spearman(relevance[1], importance, mask))
    assert table.iloc[3]["mean"] == pytest.approx(1.0)
