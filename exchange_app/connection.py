"""The broker connection's security (TLS, SASL), for Faust and every plain client alike.

Every Kafka client the exchange starts, Faust's and the plain aiokafka ones
(intake, key store, live feed, restore, admin, the CLI's), connects with
:func:`client_options`; Faust gets the same as ``broker_credentials``. On the
embedded broker and by default all of it is off (``PLAINTEXT``).
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT, SASLMechanism

from .settings import Settings, get_settings

__all__ = ["client_options", "faust_credentials"]


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    return create_ssl_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
        keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
    )


def client_options(settings: Settings | None = None) -> dict[str, Any]:
    """Keyword arguments for an aiokafka consumer, producer or admin client."""
    settings = settings or get_settings()
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    context = _ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol.startswith("SASL_"):
        assert settings.kafka_password is not None  # the settings insist
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_username,
            "sasl_plain_password": settings.kafka_password.get_secret_value(),
        }
    return options


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's ``broker_credentials``: the same connection as :func:`client_options`."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = _ssl_context(settings)
    if protocol == "SSL":
        assert context is not None
        return SSLCredentials(context)
    assert settings.kafka_password is not None
    return SASLCredentials(
        username=settings.kafka_username,
        password=settings.kafka_password.get_secret_value(),
        ssl_context=context,
        mechanism=SASLMechanism(settings.kafka_sasl_mechanism),
    )
