"""The HTTP front: an ASGI edge serving simulated traffic for each session, in front of a Quart app (loaded on
first need) for the daemon's own pages."""

from simulatord.http_front.app import create_app

__all__ = ["create_app"]
