"""A streaming electronic stock exchange on Kafka and Faust.

``faust -A exchange_app worker`` imports this package: the app, then every
table and agent registered on it.
"""

from .app import app
from . import agents  # noqa: E402,F401  (registers the agents on the app)

__all__ = ["app"]
