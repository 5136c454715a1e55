"""Gateway settings (environment prefix ``GATEWAY_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.settings import no_empty_secret


class GatewaySettings(BaseSettings):
    """Settings of the WebSocket gateway."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_file=".env", use_attribute_docstrings=True, extra="ignore"
    )

    host: str = "127.0.0.1"
    """Address to bind. Anything but loopback needs ``api_token`` or ``allow_insecure_remote``."""
    port: int = Field(8000, ge=1, le=65535)
    """TCP port to listen on."""
    api_token: SecretStr | None = None
    """Token clients must present (HTTP bearer, or ``?token=`` on the WebSocket). Unset: none."""
    allow_insecure_remote: bool = False
    """Listen beyond loopback without a token. Only for a private, trusted network."""
    log_level: str = "info"
    """Python logging level."""

    asr_urls: list[str] = ["http://127.0.0.1:8001"]
    """ASR service base URLs (JSON list); turns are spread over the healthy ones."""
    llm_urls: list[str] = ["http://127.0.0.1:8002"]
    """LLM service base URLs (JSON list)."""
    tts_urls: list[str] = ["http://127.0.0.1:8003"]
    """TTS service base URLs (JSON list)."""
    asr_token: SecretStr | None = None
    """Bearer token sent to the ASR service(s)."""
    llm_token: SecretStr | None = None
    """Bearer token sent to the LLM service(s)."""
    tts_token: SecretStr | None = None
    """Bearer token sent to the TTS service(s)."""
    asr_timeout_s: float = Field(30.0, gt=0, le=600)
    """Longest wait for a transcript."""
    llm_timeout_s: float = Field(60.0, gt=0, le=600)
    """Longest wait for the LLM's first token, and between two tokens."""
    tts_timeout_s: float = Field(30.0, gt=0, le=600)
    """Longest wait for one sentence's audio."""
    lean_http: bool = True
    """Call ``http://`` services through the gateway's own lean HTTP/1.1 transport (httpx's
    types without its client layers: about 1 ms less per call than an httpx client); false: an
    httpx client and transport for all. ``https://`` services always go through httpx's."""

    language: str = "ja"
    """Language passed to ASR; 'auto' detects it per turn."""
    voice: str | None = None
    """TTS voice id; unset: the TTS service's default voice."""
    system_prompt: str | None = None
    """System prompt used when the client's history has none; unset: the LLM service's default."""
    max_tokens: int = Field(160, ge=1, le=4096)
    """Reply length limit passed to the LLM."""
    first_clause_chars: int = Field(5, ge=0, le=200)
    """The reply's first piece may end at a comma, before an English conjunction or after a
    Japanese particle that closes a phrase once this long, so the voice starts sooner (0: whole
    sentences only)."""
    fast_tts_ms: int = Field(150, ge=0, le=10000)
    """A voice that has been synthesizing a piece in less than this (the gateway times its
    calls, per voice and language) may start at the reply's first comma or clause however
    short ("Yes, | he was."): the next piece will be ready before it has been played. A
    slower voice waits for first_clause_chars, or the listener would wait in between
    (0: never)."""
    one_wav_per_turn: bool = False
    """Send the whole reply as one WAV (the old behaviour) instead of one per sentence."""

    vad_threshold: float = Field(0.5, gt=0, lt=1)
    """Silero speech probability above which a 32 ms frame counts as speech."""
    speech_start_ms: int = Field(96, ge=32, le=2000)
    """Continuous speech that starts a turn (short, so clicks do not)."""
    silence_end_ms: int = Field(200, ge=32, le=5000)
    """Silence that ends a turn."""
    pre_roll_ms: int = Field(300, ge=0, le=2000)
    """Audio before the detected start that is sent to ASR too (word onsets are quiet)."""
    barge_in_ms: int = Field(300, ge=32, le=5000)
    """Sustained user speech that interrupts the assistant's reply."""
    max_utterance_s: float = Field(30.0, gt=1, le=600)
    """A turn is ended after this much continuous speech."""
    speculative_asr_ms: int = Field(64, ge=0, le=5000)
    """Start transcribing after this much silence, before silence_end_ms makes the turn's end
    certain: the transcript is kept if the silence lasts, dropped if speech resumes (0: only
    at the end). Saves up to the difference on every turn."""
    speculative_reply: bool = True
    """When that transcript is back before the turn's end, start the reply too: the LLM
    writes during the rest of the wait, and its stream is closed (generation stops) if
    speech resumes. Every event still waits for the turn's end. Turn it off for an LLM
    billed per request, where a dropped start costs money."""
    speculative_tts_ms: int = Field(150, ge=0, le=10000)
    """Such an early reply is also synthesized during the wait if its voice has been
    synthesizing a piece in less than this (timed as for fast_tts_ms). A TTS request cannot
    be called back once sent, so a slow voice waits for the turn's end rather than spend
    seconds on a reply that may be dropped (0: always wait)."""

    adopt_grace_s: float = Field(10.0, gt=0, le=600)
    """How long a turn whose socket closed waits for a new connection to adopt it."""
    reconnect_wait_s: float = Field(0.5, ge=0, le=10)
    """After a transcript or reply text, how long to wait for a client to reconnect (as
    LocalChatVRM does) before sending the rest of the turn on the same socket."""
    max_sessions: int = Field(64, ge=1, le=10000)
    """WebSocket connections served at once; more are refused."""
    max_sessions_per_client: int = Field(16, ge=1, le=10000)
    """Connections one client address may hold at once."""
    max_message_bytes: int = Field(1 << 20, ge=1024, le=64 << 20)
    """Largest WebSocket message accepted (text or binary)."""
    max_history_messages: int = Field(200, ge=1, le=10000)
    """Most messages a startSession history may carry; older ones are dropped."""
    max_text_chars: int = Field(4000, ge=1, le=1_000_000)
    """Longest typed message or history entry."""
    cors_origins: list[str] = ["http://localhost:3000", "http://127.0.0.1:3000"]
    """Origins allowed by CORS and on the WebSocket (LocalChatVRM runs on :3000)."""

    _no_empty_tokens = field_validator(
        "api_token", "asr_token", "llm_token", "tts_token", mode="before"
    )(no_empty_secret)
