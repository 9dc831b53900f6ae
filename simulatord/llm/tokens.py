"""The documented, deterministic token rule: what the simulation counts as a token and streams as a delta.

No tokenizer model may be downloaded at run time, so a token is a run of word characters or one other visible
character, each with the whitespace before it: "Hello, world!" is `Hello` `,` ` world` `!`, four tokens. It
tracks real BPE counts for English prose within tens of percent, and it splits text at the places where the
real streams split it.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$", re.UNICODE)
# Every message costs a few tokens of framing (role, separators), as the providers' counts do.
MESSAGE_OVERHEAD = 3
REPLY_PRIMING = 3


def split(text: str) -> list[str]:
    """The text as tokens; joined they give the text back exactly."""
    return _TOKEN.findall(text)


@functools.lru_cache(maxsize=4096)
def count(text: str) -> int:
    """Cached: a scripted reply's text is counted on every request that gets it."""
    return len(_TOKEN.findall(text))


def count_value(value: Any) -> int:
    """Tokens of a JSON value as it would be sent (tool schemas, arguments), compactly encoded."""
    if isinstance(value, str):
        return count(value)
    return count(json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True))
