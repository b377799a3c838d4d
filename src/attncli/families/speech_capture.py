"""attn align AUDIO: a recording through a speech encoder-decoder (Whisper), each target token placed in time.

A recording that fits the model's window is one window (speech_seq2seq.run_window); a longer one goes through
Whisper's own long-form decoding, then each window is aligned (speech_long). This module is the one way in, so
neither of those imports the other's caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attncli.audio import read_audio
from attncli.capture import ALL, Capture, Selection
from attncli.choices import Kind, Purpose
from attncli.errors import NotSupportedError, UsageError
from attncli.families.encdec import _cross_family, arch, decoding, keep_encoder, target_side, unfinished
from attncli.families.loaded import LoadedModel
from attncli.families.speech_long import capture_long
from attncli.families.speech_seq2seq import SpeechSeq2Seq, _text, encoder_stride, run_window


def capture_audio(path: Path | str, loaded: "LoadedModel", *, target: str | None = None,
                  max_new_tokens: int | None = None, num_beams: int = 1, selection: Selection = ALL,
                  progress: Any = None) -> Capture:
    """Transcribe a recording (or score `target`) and capture each token's cross-attention over time.

    ``selection`` picks the encoder self-attention layers and heads kept (encdec.keep_encoder). The encoder runs
    once per window; generate and the teacher-forced pass reuse its output. A recording longer than the model's
    window goes to speech_long (Whisper's own long-form decoding, then each window aligned).
    """
    family = _cross_family(loaded, Purpose.align)
    if not isinstance(family, SpeechSeq2Seq):
        raise UsageError(f"{loaded.ref.model_id} is a {family.name}: it reads text, not audio",
                         'give it text: attn align "TEXT"; for audio use a speech model such as Whisper')
    tokenizer, extractor = family.split_processor(loaded)
    rate, hop = getattr(extractor, "sampling_rate", None), getattr(extractor, "hop_length", None)
    if not rate or not hop:
        raise NotSupportedError(f"{loaded.ref.model_id}: its feature extractor names no sampling_rate and "
                                "hop_length, so encoder frames cannot be placed in time")
    audio = read_audio(path, int(rate))
    limit = getattr(extractor, "n_samples", None)
    if isinstance(limit, int) and len(audio.samples) > limit:
        return capture_long(path, loaded, family, audio, target=target, max_new_tokens=max_new_tokens,
                            num_beams=num_beams, selection=selection, progress=progress)
    window = run_window(loaded, family, audio.samples, 0.0, target=target, max_new_tokens=max_new_tokens,
                        num_beams=num_beams)
    warnings = list(audio.warnings)
    text = _text(tokenizer, window.ids, window.special)
    if window.timing.get("no_speech"):
        warnings.append(f"{window.timing['no_speech']}; the model's output {text!r} is kept as tokens but not as "
                        "words")
    if window.timing.get("fallback"):
        warnings.append(f"token times use {window.timing['heads_from']}")
    labels, _, scores, _ = target_side(tokenizer, window.ids, window.decoded.logits)
    how = decoding(window.ids, target is not None, window.max_new_tokens, num_beams, family.eos_id(loaded.model))
    frame_seconds = hop / rate * encoder_stride(loaded.model)
    positions = int(window.decoded.cross.shape[-1])
    encoder, kept_fields = keep_encoder(window.decoded.encoder, selection)
    return Capture(
        attentions=encoder, tokens=[f"{i * frame_seconds:.2f}s" for i in range(positions)],
        special=[i * frame_seconds >= window.seconds for i in range(positions)], model_id=loaded.ref.model_id,
        model_path=loaded.ref.location, kind=Kind.audio, arch=arch(loaded.config, window.decoded),
        source=str(Path(path).resolve()), warnings=warnings + unfinished(how),
        cross_attentions=window.decoded.cross, decoder_attentions=window.decoded.decoder, target_tokens=labels,
        target_special=window.special, target_scores=scores, target_text=text, decoding=how,
        frame_seconds=frame_seconds, audio_seconds=round(window.seconds, 6),
        spectrogram=window.features[0, :, :window.mel_frames].float().cpu().numpy(), target_times=window.times,
        timing=window.timing, **kept_fields,
    )
