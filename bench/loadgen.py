"""Runs wrk against one URL on loopback and parses its throughput, latency percentiles and errors."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}

# Stops wrk's single thread after `limit` responses, so "serve N requests" is a count, not a duration.
_LIMIT_LUA = """
local n = 0
response = function(status, headers, body)
  n = n + 1
  if n >= {limit} then wrk.thread:stop() end
end
"""


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def wrk_version() -> str:
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (out.stdout + out.stderr).splitlines()[0].strip()


def _post_lua(body: bytes) -> str:
    """A wrk script line set that sends every request as a POST of `body` (JSON)."""
    quoted = body.decode().replace("\\", "\\\\").replace("'", "\\'")
    return f"wrk.method = 'POST'\nwrk.body = '{quoted}'\nwrk.headers['Content-Type'] = 'application/json'\n"


def run_wrk(url: str, connections: int, seconds: float, limit: int | None = None, post: bytes | None = None) -> dict:
    """One wrk run with one thread (the machine has 2 cores: one for wrk, one for the server); `post` sends
    every request as a POST with that JSON body."""
    host = urlsplit(url).hostname
    # Load goes to loopback only: refuse anything else outright.
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"refusing to load a non-loopback address: {url}")
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s"]
    script = None
    lua = (_LIMIT_LUA.replace("{limit}", str(int(limit))) if limit else "") + (_post_lua(post) if post else "")
    if lua:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
        script.write(lua)
        script.close()
        argv += ["-s", script.name]
    argv.append(url)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        if script:
            Path(script.name).unlink(missing_ok=True)
    out = proc.stdout
    if proc.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out}\n{proc.stderr}")
    res: dict = {"connections": connections, "seconds": seconds}
    res["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    res["requests"] = int(m.group(1))
    res["elapsed_s"] = _ms(m.group(2), m.group(3)) / 1000
    for pct, val, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M):
        res[f"p{pct}_ms"] = _ms(val, unit)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    kinds = ("connect", "read", "write", "timeout")
    res["socket_errors"] = dict(zip(kinds, map(int, m.groups()), strict=True)) if m else {}
    return res
