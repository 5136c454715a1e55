import json
import os

from hypothesis import given
from hypothesis import strategies as st

from gateway.audio import json_byte_array


@given(st.binary(max_size=2000))
def test_json_byte_array_is_the_json_list_of_bytes(data: bytes) -> None:
    assert json.loads(json_byte_array(data)) == list(data)


def test_large() -> None:
    data = os.urandom(200_000)
    assert json_byte_array(data) == json.dumps(list(data), separators=(",", ":"))
