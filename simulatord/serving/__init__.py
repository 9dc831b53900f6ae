"""Serving: the data plane, one pipeline for a session's HTTP and WebSocket traffic (select, render, behaviours,
deliver, record)."""

from simulatord.serving.plane import DataPlane

__all__ = ["DataPlane"]
