"""Build the tiny random-weight models and files the docs' examples run on, in the current folder.

    python scripts/tiny_models.py tiny-marian tiny-blip tiny-vit-gpt2 tiny-llama tiny-whisper photo.png tone.wav

They come from the test suite's builders (tests/tiny*.py): 2 layers, a few heads, hidden size 16-32, seeded, so
the same command gives the same numbers. Their words are noise; the layout is what a real model gives.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def build(name: str) -> Path:
    """Make one named model folder or file; an unknown name lists the known ones."""
    import tiny
    import tiny_seq2seq
    import tiny_speech
    import tiny_vision

    makers = {
        "tiny-marian": tiny_seq2seq.make_marian,
        "tiny-t5": tiny_seq2seq.make_t5,
        "tiny-bart": tiny_seq2seq.make_bart,
        "tiny-blip": tiny_seq2seq.make_blip,
        "tiny-vit-gpt2": tiny_seq2seq.make_vit_gpt2,
        "tiny-llama": lambda path: tiny.make_llama(path, init=0.5),
        "tiny-gpt2": tiny.make_gpt2,
        "tiny-bert": tiny.make_bert,
        "tiny-whisper": tiny_speech.make_whisper,
        "photo.png": tiny_vision.photo,
        "tone.wav": lambda path: tiny_speech.write_wav(
            path, __import__("numpy").concatenate([tiny_speech.tone(0.3), 0 * tiny_speech.tone(0.3)])),
    }
    if name not in makers:
        raise SystemExit(f"tiny_models.py: unknown {name!r}; known: {', '.join(makers)}")
    return makers[name](Path(name))


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(f"wrote {build(arg)}")
