"""Pieces every service shares: the error shape, settings, auth, the inference queue."""
