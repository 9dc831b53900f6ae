"""The HTTP front: a Quart app whose ASGI edge serves simulated traffic for each session."""

from simulatord.http_front.app import create_app

__all__ = ["create_app"]
