"""Matching: the frozen request record and pure matchers that explain every mismatch."""

from simulatord.matching.matchers import MatchResult, Mismatch, RequestMatcher
from simulatord.matching.near_misses import NearMiss, nearest
from simulatord.matching.request import HttpRequest, Routing

__all__ = ["HttpRequest", "MatchResult", "Mismatch", "NearMiss", "RequestMatcher", "Routing", "nearest"]
