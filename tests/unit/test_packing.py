"""The packed batch format of the internal topics: any bytes round-trip, damage is caught."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange_app.packing import Packed, PackingError, pack, unpack

records = st.builds(
    Packed,
    st.integers(0, 2**31 - 1),
    st.integers(0, 2**63 - 1),
    st.integers(0, 2**63 - 1),
    st.none() | st.binary(max_size=40),
    st.none() | st.binary(max_size=200),
)


@given(st.lists(records, max_size=30))
def test_any_records_round_trip(batch: list[Packed]) -> None:
    assert list(unpack(pack(batch))) == batch


@pytest.mark.parametrize("cut", [1, 10, 28, 30])
def test_a_truncated_batch_is_an_error_not_a_short_read(cut: int) -> None:
    data = pack([Packed(0, 7, 0, b"k", b'{"id": 1}')])
    with pytest.raises(PackingError):
        list(unpack(data[:-cut]))


def test_an_empty_batch_is_empty() -> None:
    assert list(unpack(pack([]))) == []
