"""Matching: the frozen request record and pure matchers that explain every mismatch."""

from simulatord.matching.matchers import MatchResult, Mismatch, RequestMatcher
from simulatord.matching.request import HttpRequest

__all__ = ["HttpRequest", "MatchResult", "Mismatch", "RequestMatcher"]
