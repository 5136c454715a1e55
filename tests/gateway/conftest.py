"""Fixtures of the gateway's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.fakes import FakeBehaviour, create_fake_services
from tests.servers import serve


@pytest.fixture
def fake_url(fake: FakeBehaviour) -> Iterator[str]:
    """The fake services, behaving as the test module's own ``fake`` fixture says."""
    with serve(create_fake_services(fake)) as url:
        yield url
