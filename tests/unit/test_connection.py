"""The broker connection's TLS and SASL settings reach Faust and every plain client."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

import exchange_app
from exchange_app.application import faust_options
from exchange_app.connection import client_options, faust_credentials
from exchange_app.settings import Settings

SASL_SSL = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "SCRAM-SHA-256",
    "kafka_username": "exchange",
    "kafka_password": "s3cret",
}


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    settings = Settings()
    assert client_options(settings) == {}
    assert faust_credentials(settings) is None
    assert "broker_credentials" not in faust_options(settings)


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_sasl_reaches_plain_clients_and_faust_alike(protocol: str) -> None:
    settings = Settings(**{**SASL_SSL, "kafka_security_protocol": protocol})
    options = client_options(settings)
    assert options["security_protocol"] == protocol
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == (
        "SCRAM-SHA-256",
        "exchange",
    )
    assert options["sasl_plain_password"] == "s3cret"
    credentials = faust_options(settings)["broker_credentials"]
    faust_side = credentials_to_aiokafka_auth(credentials)
    assert {k: v for k, v in faust_side.items() if k != "ssl_context"} == {
        k: v for k, v in options.items() if k != "ssl_context"
    }
    if protocol == "SASL_SSL":
        for context in (options["ssl_context"], faust_side["ssl_context"]):
            assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    else:
        assert "ssl_context" not in options and faust_side["ssl_context"] is None
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(credentials)


def test_tls_alone_checks_the_broker() -> None:
    settings = Settings(kafka_security_protocol="SSL")
    options = client_options(settings)
    assert options["security_protocol"] == "SSL"
    assert options["ssl_context"].verify_mode is ssl.CERT_REQUIRED
    assert credentials_to_aiokafka_auth(faust_credentials(settings))["security_protocol"] == "SSL"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs EXCHANGE_KAFKA_USERNAME"),
        ({**SASL_SSL, "kafka_password": None}, "needs EXCHANGE_KAFKA_USERNAME"),
        ({"kafka_ssl_certfile": "client.pem"}, "go together"),
        ({"kafka_security_protocol": "SASL_TLS"}, "kafka_security_protocol"),
        ({**SASL_SSL, "kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
    ],
)
def test_incomplete_settings_are_refused_at_start(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**fields)


def test_every_plain_client_of_the_worker_and_the_cli_uses_the_connection_settings() -> None:
    """Source check: a client built without them would connect in plain text."""
    root = Path(exchange_app.__file__).parent
    clients = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient"}
    found, missing = [], []
    for path in sorted(root.rglob("*.py")):
        if path.parent.name == "e2e":  # the benchmark runs its own embedded broker
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in clients:
                where = f"{path.relative_to(root)}:{node.lineno}"
                found.append(where)
                spread = [k.value for k in node.keywords if k.arg is None]
                if not any(
                    isinstance(v, ast.Call) and getattr(v.func, "id", "") == "client_options"
                    for v in spread
                ):
                    missing.append(where)
    assert len(found) >= 10 and not missing
