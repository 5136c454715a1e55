"""Text-to-speech service (port 8003): Style-Bert-VITS2, Kokoro and OpenJTalk voices."""
