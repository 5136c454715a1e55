"""TTS routes and the app factory: ``uvicorn --factory services.tts.app:create_app``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated

import numpy as np
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from services.common import audio
from services.common.auth import make_token_checker
from services.common.errors import install_error_handlers

from .engine import SynthesisOptions, Synthesizer, load_synthesizers
from .schemas import HealthResponse, SpeechRequest, SynthesizeRequest, VoiceInfo, VoicesResponse
from .settings import TTSSettings
from .voices import OPENAI_VOICES, VoiceBook

logger = logging.getLogger(__name__)

OPENAI_PCM_RATE = 24000  # OpenAI documents its pcm output as 24 kHz; clients assume it


def create_app(
    settings: TTSSettings | None = None, engine: Synthesizer | Sequence[Synthesizer] | None = None
) -> FastAPI:
    """Build the app; ``engine``: loaded synthesizers (tests), else ``settings.backends`` load."""
    settings = settings or TTSSettings()
    given = [engine] if engine is not None and not isinstance(engine, Sequence) else engine

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engines = (
            list(given)
            if given is not None
            else await asyncio.to_thread(load_synthesizers, settings)
        )
        app.state.voices = VoiceBook(
            engines,
            max_queue=settings.max_queue,
            default_voice=settings.default_voice,
            max_chars=settings.max_chars,
            max_sentence_chars=settings.max_sentence_chars,
            sentence_pause_s=settings.sentence_pause_s,
            target_level_dbfs=settings.target_level_dbfs,
        )
        logger.info("TTS ready: voices %s", app.state.voices.names())
        yield

    app = FastAPI(
        title="koe TTS",
        summary="Japanese and English text to speech: Style-Bert-VITS2, Kokoro, OpenJTalk "
        "and eSpeak NG voices.",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(make_token_checker(settings.api_token))],
    )
    install_error_handlers(app)
    _add_routes(app)
    return app


def get_voices(request: Request) -> VoiceBook:
    book: VoiceBook = request.app.state.voices
    return book


Voices = Annotated[VoiceBook, Depends(get_voices)]


def _audio_headers(sample_rate: int) -> dict[str, str]:
    return {"X-Sample-Rate": str(sample_rate), "X-Channels": "1", "X-Sample-Format": "s16le"}


def _add_routes(app: FastAPI) -> None:
    @app.get("/health", response_model=HealthResponse, tags=["service"])
    async def health(book: Voices) -> HealthResponse:
        return HealthResponse(backends=book.backends, voices=len(book.voices()), busy=book.busy)

    @app.get("/voices", response_model=VoicesResponse, tags=["tts"])
    async def voices(book: Voices) -> VoicesResponse:
        """Every loaded voice with its styles, languages, sample rate and honoured knobs."""
        return VoicesResponse(
            default_voice=book.default_voice,
            voices=[
                VoiceInfo(
                    id=v.id,
                    backend=v.backend,
                    languages=list(v.languages),
                    styles=list(v.styles),
                    sample_rate=v.sample_rate,
                    knobs=list(v.knobs),
                    description=v.description,
                    default=v.id == book.default_voice,
                )
                for v in book.voices()
            ],
            formats=["wav", "pcm"],
        )

    @app.post(
        "/synthesize",
        tags=["tts"],
        response_class=Response,
        responses={200: {"content": {"audio/wav": {}, "audio/pcm": {}}}},
    )
    async def synthesize(body: SynthesizeRequest, book: Voices) -> Response:
        """Speak ``text``: a 16-bit mono WAV (or raw PCM with the rate in ``X-Sample-Rate``)."""
        voice, style, sentences = book.plan(body.text, body.voice, body.style)
        rate = body.sample_rate or voice.sample_rate
        pcm = await book.synthesize(voice, sentences, body.options(style), rate)
        data, rate = audio.encode(pcm, rate, body.format)
        return Response(
            data, media_type=audio.MEDIA_TYPES[body.format], headers=_audio_headers(rate)
        )

    @app.post(
        "/synthesize/stream",
        tags=["tts"],
        response_class=StreamingResponse,
        responses={200: {"content": {"audio/pcm": {}}}},
    )
    async def synthesize_stream(body: SynthesizeRequest, book: Voices) -> StreamingResponse:
        """Speak ``text`` sentence by sentence as chunked raw int16 PCM (rate in ``X-Sample-Rate``).

        Each chunk is one whole sentence (with its trailing pause), sent as soon
        as it is synthesized; ``format`` is ignored.
        """
        voice, style, sentences = book.plan(body.text, body.voice, body.style)
        rate = body.sample_rate or voice.sample_rate
        chunks = book.stream(voice, sentences, body.options(style), rate)
        # The first sentence is synthesized before the response starts, so a full
        # queue or a model error still gets a proper status code and error body.
        first = await anext(chunks)

        async def body_iter() -> AsyncIterator[bytes]:
            try:
                yield first.astype("<i2").tobytes()
                async for chunk in chunks:
                    yield chunk.astype("<i2").tobytes()
            finally:
                await chunks.aclose()  # a client that left frees the model now

        return StreamingResponse(body_iter(), media_type="audio/pcm", headers=_audio_headers(rate))

    @app.post(
        "/v1/audio/speech",
        tags=["openai"],
        response_class=Response,
        responses={200: {"content": {t: {} for t in audio.MEDIA_TYPES.values()}}},
    )
    async def speech(body: SpeechRequest, book: Voices) -> Response:
        """OpenAI-compatible speech: ``client.audio.speech.create(model=, voice=, input=)``."""
        name = body.voice
        if body.model in book.backends and (not name or name.lower() in OPENAI_VOICES):
            name = body.model  # model="openjtalk", voice="alloy": that backend's voice
        voice, style, sentences = book.plan(body.input, name, None, param="input", openai=True)
        rate = OPENAI_PCM_RATE if body.response_format == "pcm" else voice.sample_rate
        options = SynthesisOptions(style=style, speed=body.speed)
        pcm: np.ndarray = await book.synthesize(voice, sentences, options, rate)
        data, rate = audio.encode(pcm, rate, body.response_format)
        media = audio.MEDIA_TYPES[body.response_format]
        return Response(data, media_type=media, headers=_audio_headers(rate))
