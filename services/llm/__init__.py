"""LLM service: short spoken-style chat replies, streamed, OpenAI-compatible (port 8002)."""
