"""The voice book: every loaded voice, request checking, and the per-sentence pipeline.

Routes ask it to resolve a voice and style, to turn text into sentences, and to
synthesize; it owns one :class:`InferenceQueue` per model, so one synthesis
runs at a time per model while other models stay free.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import numpy as np

from services.common import audio
from services.common.errors import APIError, PayloadTooLarge
from services.common.queue import InferenceQueue

from . import text as textproc
from .engine import SynthesisOptions, Synthesizer, Voice

# Names the OpenAI SDK and tools send; they mean "the server's default voice" here.
OPENAI_VOICES = frozenset(
    "alloy ash ballad cedar coral echo fable marin nova onyx sage shimmer verse".split()
)


@dataclass
class _Entry:
    voice: Voice
    engine: Synthesizer
    queue: InferenceQueue


class VoiceBook:
    def __init__(
        self,
        engines: list[Synthesizer],
        *,
        max_queue: int = 8,
        default_voice: str | None = None,
        max_chars: int = 2000,
        max_sentence_chars: int = 120,
        sentence_pause_s: float = 0.25,
        target_level_dbfs: float = audio.TARGET_LEVEL_DBFS,
    ) -> None:
        self.engines = engines
        self.max_chars = max_chars
        self.max_sentence_chars = max_sentence_chars
        self.sentence_pause_s = sentence_pause_s
        self.target_level_dbfs = target_level_dbfs
        self._entries: dict[str, _Entry] = {}
        self._aliases: dict[str, str] = {}
        for engine in engines:
            queue = InferenceQueue(max_queue)  # one per model, shared by its voices
            for voice in engine.voices():
                if voice.id in self._entries:
                    raise ValueError(f"two backends offer a voice called {voice.id!r}")
                self._entries[voice.id] = _Entry(voice, engine, queue)
                self._aliases[f"{engine.name}/{voice.id}"] = voice.id
                self._aliases.setdefault(engine.name, voice.id)
        if not self._entries:
            raise ValueError("no voices loaded")
        default = self._lookup(default_voice) if default_voice else next(iter(self._entries))
        if default is None:
            raise ValueError(f"default voice {default_voice!r} is not loaded; have {self.names()}")
        self.default_voice: str = default

    def voices(self) -> list[Voice]:
        return [e.voice for e in self._entries.values()]

    @property
    def backends(self) -> list[str]:
        return [engine.name for engine in self.engines]

    @property
    def busy(self) -> bool:
        return any(e.queue.busy for e in self._entries.values())

    def names(self) -> str:
        return ", ".join(self._entries)

    def _lookup(self, name: str) -> str | None:
        if name in self._entries:
            return name
        return self._aliases.get(name)

    def resolve(
        self, name: str | None, style: str | None, *, openai: bool = False
    ) -> tuple[Voice, str]:
        """The voice and style a request means, or a 400 that lists the valid ones."""
        voice_id = self.default_voice if not name else self._lookup(name)
        if voice_id is None and openai and name in OPENAI_VOICES:
            voice_id = self.default_voice
        if voice_id is None:
            raise APIError(
                f"unknown voice {name!r}; available voices: {self.names()}",
                param="voice",
                code="unknown_voice",
            )
        voice = self._entries[voice_id].voice
        if not style:
            return voice, voice.styles[0]
        by_lower = {s.lower(): s for s in voice.styles}
        if style.lower() not in by_lower:
            raise APIError(
                f"unknown style {style!r} for voice {voice.id!r}; "
                f"its styles: {', '.join(voice.styles)}",
                param="style",
                code="unknown_style",
            )
        return voice, by_lower[style.lower()]

    def plan(
        self,
        text: str,
        name: str | None,
        style: str | None,
        *,
        param: str = "text",
        openai: bool = False,
    ) -> tuple[Voice, str, list[str]]:
        """Voice, style and sentences for a request (:meth:`resolve`, then :meth:`sentences`).

        When the request names no voice (or an OpenAI name), the default voice
        gives way to the first loaded voice that speaks the text's language: the
        gateway sends no voice, and English replies then get the English voice.
        A named voice is kept, and language it cannot speak is a 422.
        """
        voice, chosen = self.resolve(name, style, openai=openai)
        named = bool(name) and not (openai and name in OPENAI_VOICES and not self._lookup(name))
        language = textproc.detect_language(textproc.strip_markup(text), voice.languages[0])
        if not named and language not in voice.languages:
            able = next((v for v in self.voices() if language in v.languages), None)
            if able is not None:
                # The style was checked against the default voice; the stand-in keeps
                # it if it has it, else speaks in its own first style.
                chosen = chosen if chosen in able.styles else able.styles[0]
                voice = able
        return voice, chosen, self.sentences(text, voice, param)

    def sentences(self, text: str, voice: Voice, param: str = "text") -> list[str]:
        """Check and clean ``text``, and split it into the sentences to synthesize."""
        if not text.strip():
            raise APIError(f"{param} is empty", param=param, code="empty_text")
        if len(text) > self.max_chars:
            raise PayloadTooLarge(
                f"{param} is {len(text)} characters; the limit is {self.max_chars}",
                param=param,
                code="text_too_long",
            )
        language = textproc.detect_language(textproc.strip_markup(text), voice.languages[0])
        cleaned = textproc.normalize(text, language)
        sentences = textproc.split_sentences(cleaned, self.max_sentence_chars)
        if not sentences:
            raise APIError(
                f"{param} has nothing to say once markup, URLs, emoji and punctuation are removed",
                param=param,
                code="nothing_to_speak",
            )
        if language not in voice.languages:
            able = [v.id for v in self.voices() if language in v.languages]
            can = f"voices that can: {', '.join(able)}" if able else "no loaded voice can"
            raise APIError(
                f"{param} looks like language {language!r}, which voice {voice.id!r} does not "
                f"speak (it speaks {', '.join(voice.languages)}); {can}. Japanese text may "
                "contain English words: they are read in katakana.",
                param=param,
                code="unsupported_language",
                status_code=422,
            )
        return sentences

    def render(
        self, voice: Voice, sentence: str, options: SynthesisOptions, sample_rate: int, last: bool
    ) -> np.ndarray:
        """One sentence: trimmed, loudness-normalised, resampled, with its pause. Blocking."""
        entry = self._entries[voice.id]
        raw = entry.engine.synthesize(sentence, voice.id, options)
        out = audio.trim_silence(np.asarray(raw, dtype=np.float32), voice.sample_rate)
        out = audio.normalize_loudness(out, voice.sample_rate, self.target_level_dbfs)
        out = audio.resample(out, voice.sample_rate, sample_rate)
        if not last:
            out = np.concatenate([out, audio.silence(self.sentence_pause_s, sample_rate)])
        return audio.to_int16(out)

    async def stream(
        self, voice: Voice, sentences: list[str], options: SynthesisOptions, sample_rate: int
    ) -> AsyncGenerator[np.ndarray, None]:
        """Yield int16 audio sentence by sentence; the model is held until the last one.

        Raises :class:`ServiceBusy` on the first ``__anext__`` when the line is full.
        """
        queue = self._entries[voice.id].queue
        await queue.acquire()
        pending: asyncio.Future[np.ndarray] | None = None
        try:
            for i, sentence in enumerate(sentences):
                args = (voice, sentence, options, sample_rate, i == len(sentences) - 1)
                pending = asyncio.ensure_future(asyncio.to_thread(self.render, *args))
                # shield: a client that goes away cancels us, not the model thread
                chunk = await asyncio.shield(pending)
                pending = None
                yield chunk
        finally:
            if pending is not None and not pending.done():
                # The thread cannot be stopped; the model stays taken until it ends.
                pending.add_done_callback(lambda f: _release_after(f, queue))
            else:
                queue.release()

    async def synthesize(
        self, voice: Voice, sentences: list[str], options: SynthesisOptions, sample_rate: int
    ) -> np.ndarray:
        """All sentences as one int16 array."""
        chunks = [chunk async for chunk in self.stream(voice, sentences, options, sample_rate)]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def _release_after(finished: asyncio.Future[np.ndarray], queue: InferenceQueue) -> None:
    if not finished.cancelled():
        finished.exception()  # nobody awaits it any more: mark any error as seen
    queue.release()
