"""Tests of the TTS service (services/tts)."""
