"""ASR service: ``/transcribe`` for curl and the gateway, ``/v1/audio/transcriptions`` for OpenAI SDKs."""  # noqa: E501

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Form, Query, Request, UploadFile
from fastapi.responses import PlainTextResponse, Response
from starlette.datastructures import UploadFile as StarletteUpload

from services.common.auth import make_token_checker
from services.common.errors import (
    APIError,
    PayloadTooLarge,
    UnsupportedMediaType,
    install_error_handlers,
)

from .audio import decode_file, decode_pcm
from .engine import Transcriber
from .pipeline import RecognitionPipeline
from .schemas import (
    LANGUAGES,
    HealthResponse,
    OpenAISegment,
    OpenAITranscription,
    OpenAIVerboseTranscription,
    ResponseFormat,
    TranscribeResponse,
)
from .settings import ASRSettings
from .subtitles import to_srt, to_vtt

PCM_TYPES = {"audio/pcm", "audio/l16", "audio/x-raw", "application/octet-stream"}
FILE_TYPES = {
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/flac",
    "audio/x-flac",
    "audio/ogg",
    "audio/mpeg",
    "audio/mp3",
}


def get_pipeline(request: Request) -> RecognitionPipeline:
    pipeline: RecognitionPipeline = request.app.state.pipeline
    return pipeline


Pipeline = Annotated[RecognitionPipeline, Depends(get_pipeline)]


def _language(value: str | None, default: str | None) -> str | None:
    """Validated language code, or None to detect it."""
    lang = (value or default or "auto").strip().lower()
    if lang == "auto":
        return None
    if lang not in LANGUAGES:
        raise APIError(
            f"unknown language {value!r}; use a Whisper code such as ja or en, or auto",
            param="language",
            code="invalid_language",
        )
    return lang


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes whether or not a length was declared."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body exceeds {limit} bytes", code="body_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes", code="body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_upload(file: StarletteUpload, limit: int) -> bytes:
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(
            f"uploaded file exceeds {limit} bytes", param="file", code="body_too_large"
        )
    return data


def create_app(settings: ASRSettings | None = None, engine: Transcriber | None = None) -> FastAPI:
    settings = settings or ASRSettings()
    limit = int(settings.max_upload_mb * 1024 * 1024)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pipeline = RecognitionPipeline(settings, engine)
        app.state.pipeline = pipeline
        if settings.preload:
            await asyncio.to_thread(lambda: pipeline.transcriber)
        yield

    app = FastAPI(
        title="koe ASR",
        description="Whisper speech recognition. Japanese by default; `language=auto` detects.",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(make_token_checker(settings.api_token))],
    )
    install_error_handlers(app)

    @app.get("/health", response_model=HealthResponse)
    async def health(pipeline: Pipeline) -> HealthResponse:
        loaded = pipeline.loaded
        t = pipeline.transcriber if loaded else None
        return HealthResponse(
            status="ok" if loaded or not settings.preload else "loading",
            backend=settings.backend,
            device=t.device if t else None,
            model=t.model_name if t else settings.model,
            model_loaded=loaded,
            cpu_threads=getattr(t, "threads", None) if t and t.device == "cpu" else None,
            queue_waiting=pipeline.queue.waiting,
        )

    @app.post(
        "/transcribe",
        response_model=TranscribeResponse,
        openapi_extra={
            "requestBody": {
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}},
                            "required": ["file"],
                        }
                    },
                    "audio/pcm": {"schema": {"type": "string", "format": "binary"}},
                }
            }
        },
    )
    async def transcribe(
        request: Request,
        pipeline: Pipeline,
        language: Annotated[str | None, Query(description="ja (default), en, ..., or auto")] = None,
        prompt: Annotated[str | None, Query(max_length=1000)] = None,
        sample_rate: Annotated[int, Query(description="rate of a raw PCM body")] = 16000,
    ) -> TranscribeResponse:
        """Transcribe an uploaded audio file (multipart field ``file``) or a raw 16-bit PCM body."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=8)
            upload = form.get("file")
            if not isinstance(upload, StarletteUpload):
                raise APIError(
                    "multipart body needs a 'file' field", param="file", code="missing_file"
                )
            audio = decode_file(await _read_upload(upload, limit), settings.max_duration_s)
        elif ctype in PCM_TYPES:
            body = await _read_body(request, limit)
            audio = decode_pcm(body, sample_rate, settings.max_duration_s)
        elif ctype in FILE_TYPES:
            audio = decode_file(await _read_body(request, limit), settings.max_duration_s)
        else:
            raise UnsupportedMediaType(
                f"unsupported content type {ctype or '(none)'!r}: send multipart/form-data with "
                "a 'file', audio/pcm (16-bit little-endian mono), or an audio file type",
                code="unsupported_media_type",
            )
        lang = _language(language, settings.language)
        result, elapsed = await pipeline.transcribe(audio, lang, prompt)
        return TranscribeResponse(
            text=result.text,
            language=result.language,
            duration_s=round(result.duration_s, 3),
            processing_s=round(elapsed, 3),
        )

    @app.post("/v1/audio/transcriptions", response_model=None)
    async def openai_transcriptions(
        pipeline: Pipeline,
        file: Annotated[UploadFile, Form()],
        model: Annotated[str, Form()] = "whisper-1",
        language: Annotated[str | None, Form()] = None,
        prompt: Annotated[str | None, Form(max_length=1000)] = None,
        temperature: Annotated[float, Form(ge=0.0, le=1.0)] = 0.0,
        response_format: Annotated[ResponseFormat, Form()] = "json",
    ) -> Response | OpenAITranscription | OpenAIVerboseTranscription:
        """OpenAI-compatible transcription. ``model`` is accepted and ignored; the service
        runs its configured model. Without ``language`` the language is detected."""
        audio = decode_file(await _read_upload(file, limit), settings.max_duration_s)
        result, _ = await pipeline.transcribe(audio, _language(language, None), prompt, temperature)
        if response_format == "text":
            return PlainTextResponse(result.text)
        if response_format == "srt":
            return PlainTextResponse(to_srt(result.segments))
        if response_format == "vtt":
            return PlainTextResponse(to_vtt(result.segments), media_type="text/vtt")
        if response_format == "verbose_json":
            return OpenAIVerboseTranscription(
                language=result.language,
                duration=round(result.duration_s, 3),
                text=result.text,
                segments=[
                    OpenAISegment(
                        id=i,
                        start=s.start,
                        end=s.end,
                        text=s.text,
                        avg_logprob=s.avg_logprob,
                        no_speech_prob=s.no_speech_prob,
                    )
                    for i, s in enumerate(result.segments)
                ],
            )
        return OpenAITranscription(text=result.text)

    return app
