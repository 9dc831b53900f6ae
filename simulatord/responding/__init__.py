"""Responding: what a stub sends back, and the behaviour chain between rendering a reply and delivering it."""

from simulatord.responding.behaviour import Behaviour, Context
from simulatord.responding.reply import Reply, ResponseSpec

__all__ = ["Behaviour", "Context", "Reply", "ResponseSpec"]
