"""A tiny BERT saved with a sequence-classification head (for gradient rollout on text; no network)."""

from __future__ import annotations

from pathlib import Path

LABELS = {0: "negative", 1: "positive"}


def make_bert_classifier(folder: Path) -> Path:
    """A 2-layer, 2-head BertForSequenceClassification with the tiny WordPiece vocabulary, saved to folder."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    from tiny import WORDS

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=len(LABELS), id2label=LABELS,
                        label2id={v: k for k, v in LABELS.items()})
    BertForSequenceClassification(config).save_pretrained(folder)
    BertTokenizer(vocab=str(folder / "vocab.txt"), model_max_length=32).save_pretrained(folder)
    return folder
