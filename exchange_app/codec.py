"""The ``exjson`` Faust codec: JSON whose numbers are ``Decimal``, never ``float``."""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from .wire import dumps, loads

__all__ = ["CODEC", "DecimalJSON"]

CODEC = "exjson"


class DecimalJSON(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return loads(s)


codecs.register(CODEC, DecimalJSON())
