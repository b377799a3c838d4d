"""Tiny real models built from configs and saved like any Hugging Face checkpoint (no network)."""

from __future__ import annotations

from pathlib import Path

WORDS = ("the cat sat on mat because it was tired dog ran a big red house hello world play ##s ##ed "
         "and of to in is that".split())


def make_bert(folder: Path, layers: int = 2, heads: int = 2, hidden: int = 16, max_positions: int = 32) -> Path:
    """A 2-layer BERT with a small WordPiece vocabulary, saved to folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", *WORDS]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizer(vocab=str(folder / "vocab.txt"), model_max_length=max_positions)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=hidden * 2,
                        max_position_embeddings=max_positions)
    BertModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _bpe(positions: int):
    """A byte-level BPE tokenizer trained on a few sentences (<|endoftext|> is id 0)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(["The cat sat on the mat because it was tired."] * 3 + [" ".join(WORDS)], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", model_max_length=positions)


def make_gpt2(folder: Path, layers: int = 2, heads: int = 2, hidden: int = 16, positions: int = 64,
              init: float = 0.02, vocab: int | None = None) -> Path:
    """A 2-layer GPT-2 with a byte-level BPE tokenizer trained on a few sentences, saved to folder.

    ``vocab`` pads the embedding and LM head to that many rows (a real model's size; the tokenizer still uses
    only its own ids).
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tok = _bpe(positions)
    config = GPT2Config(vocab_size=max(vocab or 0, len(tok)), n_embd=hidden, n_layer=layers, n_head=heads,
                        n_positions=positions, bos_token_id=0, eos_token_id=0, initializer_range=init)
    folder.mkdir(parents=True, exist_ok=True)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def make_llama(folder: Path, layers: int = 2, heads: int = 4, kv_heads: int = 2, hidden: int = 32,
               positions: int = 64, init: float = 0.02, intermediate: int | None = None,
               vocab: int | None = None) -> Path:
    """A 2-layer Llama (RoPE, grouped-query attention) with the same byte-level BPE tokenizer, saved to folder.

    ``intermediate`` is the MLP width (default 2 x hidden); ``vocab`` pads the embedding and LM head as in make_gpt2.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = _bpe(positions)
    config = LlamaConfig(vocab_size=max(vocab or 0, len(tok)), hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads,
                         intermediate_size=intermediate or hidden * 2,
                         max_position_embeddings=positions, bos_token_id=0, eos_token_id=0, initializer_range=init)
    folder.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def lay_out_hub_cache(hf_home: Path, repo_id: str, source: Path, revision: str = "0" * 40) -> Path:
    """Copy a saved model into an HF cache under HF_HOME the way huggingface_hub stores a download."""
    import shutil

    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        shutil.copy2(f, snapshot / f.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot
