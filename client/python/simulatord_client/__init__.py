"""Python client for simulatord: sessions as context managers, stub builders, and a pytest plugin."""

from simulatord_client.embedded import EmbeddedDaemon

__all__ = ["EmbeddedDaemon"]
