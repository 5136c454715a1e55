"""Bearer-token protection for a service reached beyond loopback."""

from __future__ import annotations

import hmac

from fastapi import Request
from pydantic import SecretStr

from .errors import Unauthorized

OPEN_PATHS = frozenset({"/health"})


def make_token_checker(token: SecretStr | None):  # noqa: ANN201 - returns a FastAPI dependency
    """A dependency that rejects requests without ``Authorization: Bearer <token>``.

    With no token configured it lets everything through (the service then only
    listens on loopback, which :mod:`services.common.server` enforces).
    """
    expected = token.get_secret_value().encode() if token else None

    async def check(request: Request) -> None:
        if expected is None or request.url.path in OPEN_PATHS:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        # compare_digest: the time taken must not reveal how much of the token matched
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise Unauthorized()

    return check
