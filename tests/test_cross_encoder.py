"""KB_RERANKER_MODEL: a sentence-transformers CrossEncoder from a local path reranks the fused candidates.

No cross-encoder weights are installable offline, so the test builds a tiny one (random BERT, its own vocabulary)
and checks that the pipeline orders passages by that model's scores.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-cross-encoder")
    chars = "abcdefghijklmnopqrstuvwxyz0123456789公司几点上班年假病天工资报销"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(chars)]
    (path / "vocab.txt").write_text("\n".join(vocab), encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=1)  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_cross_encoder_from_a_local_path_orders_the_passages_by_its_scores(
    sample_data_dir, embeddings, tiny_cross_encoder
):
    from sentence_transformers import CrossEncoder

    from kb_assistant.assistant import Assistant
    from kb_assistant.settings import Settings

    settings = Settings(data_dir=sample_data_dir, reranker_model=tiny_cross_encoder, cache_enabled=False,
                        confidence_threshold=0.0)  # fmt: skip
    answer = Assistant(settings, embeddings=embeddings).ask("How many days of sick leave do I get?")
    assert len(answer.passages) == settings.top_k
    model = CrossEncoder(tiny_cross_encoder, device="cpu")
    index = Assistant(settings, embeddings=embeddings).index("default")
    texts = index.get([p.chunk_id for p in answer.passages])
    logits = model.predict([(answer.standalone_question, texts[p.chunk_id].search_text()) for p in answer.passages])
    assert list(logits) == sorted(logits, reverse=True)  # the model's order, not fusion's
    assert all(0.0 <= p.score <= 1.0 for p in answer.passages)  # sigmoid of the logit: the one 0..1 scale
