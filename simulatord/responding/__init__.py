"""Responding: what a stub sends back, and the pipeline of stages that turns a request into a reply."""

from simulatord.responding.reply import Reply, ResponseSpec

__all__ = ["Reply", "ResponseSpec"]
