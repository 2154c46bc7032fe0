"""The serving layer: JSON views, order entry, live push and the trader dashboard."""

from .broadcast import Broadcaster, Event
from .peers import ROUTED
from .views import Api, Services, install

__all__ = ["ROUTED", "Api", "Broadcaster", "Event", "Services", "install"]
