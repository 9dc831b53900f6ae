"""The pytest plugin (entry point `simulatord`): a daemon per test run or worker, and a fresh session per test.

Fixtures:

- `simulatord_address` (session scope): the gRPC address in use - `--simulatord-address` or
  `SIMULATORD_ADDRESS` when given, else that of a daemon embedded once per process (per xdist worker): on a
  thread of this process by default, its control calls made in process rather than over loopback
  (`--simulatord-embedded process` starts a child process instead). Either way the daemon also serves HTTP
  and gRPC on free loopback ports, for the code under test and for other processes.
- `simulatord_daemon` (session scope): that daemon (a `simulatord.embedded.ThreadDaemon` or an
  `EmbeddedDaemon`, with `http_url` and `grpc_address`), or None when an address was given.
- `simulator` (session scope): a `Simulator` on that daemon, with the token of `--simulatord-token` or
  `SIMULATORD_TOKEN` (for a daemon started with `--auth`).
- `sim_session`: a new `Session` per test in this run's tenant (`--simulatord-tenant` or `SIMULATORD_TENANT`
  when given: a token scoped to tenants needs one of them), deleted afterwards; verified at teardown
  with `@pytest.mark.simulatord(verify=True)` or `--simulatord-verify` (only when the test passed).
- `mock_http_server`: a `MockHttpServer` over `sim_session`, for suites written against a mock server.

Example::

    def test_profile(sim_session):
        sim_session.stub("GET", "/users/{id}", json={"name": "Ada"})
        assert httpx.get(f"{sim_session.url}/users/1").json() == {"name": "Ada"}
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shlex
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from simulatord_client.embedded import EmbeddedDaemon

if TYPE_CHECKING:
    from simulatord.embedded import ThreadDaemon
    from simulatord_client.client import Session, Simulator
    from simulatord_client.migration import MockHttpServer

# grpc and the generated messages are imported inside the fixtures: every pytest run in an environment
# with simulatord installed loads this plugin, and runs that never ask for a fixture should not pay for them.

_CALL_REPORT = pytest.StashKey[pytest.TestReport]()
_TENANT = pytest.StashKey[str]()
_MARKER_KEYS = {"verify", "tenant", "ttl", "labels", "stubs", "unmatched_status", "template", "llm"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("simulatord", "simulatord API simulator")
    group.addoption(
        "--simulatord-address",
        default=None,
        help="gRPC address of a running simulatord (default: $SIMULATORD_ADDRESS, else start one per process)",
    )
    group.addoption(
        "--simulatord-token",
        default=None,
        help="bearer token for a daemon started with --auth (default: $SIMULATORD_TOKEN)",
    )
    group.addoption(
        "--simulatord-verify",
        action="store_true",
        default=False,
        help="verify every sim_session at teardown (unused stubs, unmet counts, unmatched requests)",
    )
    group.addoption(
        "--simulatord-tenant",
        default=None,
        help="tenant for sim_session (default: $SIMULATORD_TENANT, else pytest-{run id}-{xdist worker})",
    )
    group.addoption(
        "--simulatord-embedded",
        choices=("thread", "process"),
        default=os.environ.get("SIMULATORD_EMBEDDED", "thread"),
        help="where the daemon this plugin starts runs: a thread of this process, whose control calls skip the "
        "loopback round trip (default), or a child process [SIMULATORD_EMBEDDED]",
    )
    group.addoption(
        "--simulatord-daemon-args",
        default="",
        help="extra `simulatord serve` flags for the daemon this plugin starts, e.g. '--default-ttl 60'",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "simulatord(verify=False, tenant=None, ttl=None, labels=None, stubs=None, unmatched_status=0, template='',"
        " llm=None): settings of this test's sim_session",
    )
    tenant = config.getoption("simulatord_tenant") or os.environ.get("SIMULATORD_TENANT")
    config.stash[_TENANT] = tenant or _run_tenant()


def _run_tenant() -> str:
    # xdist gives every worker of one run the same TESTRUNUID: one tenant per worker per run keeps
    # `simulatord sessions list --tenant` readable and runs sharing a daemon apart.
    run = re.sub(r"[^a-z0-9]", "", os.environ.get("PYTEST_XDIST_TESTRUNUID", "").lower())[:8] or secrets.token_hex(4)
    worker = re.sub(r"[^a-z0-9]", "", os.environ.get("PYTEST_XDIST_WORKER", "main").lower()) or "main"
    return f"pytest-{run}-{worker}"


def _session_id(test_name: str) -> str:
    # A readable prefix (`test-login-fails-...`) makes a leftover session easy to trace back to its test; the
    # 128 random bits after it make the id unguessable, for the session's URL is all the code under test needs
    # to reach (and read or disturb) it. 36 + 1 + 26 characters: the 63 an id may have.
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:36].strip("-") or "test"
    random = base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()
    return f"{slug}-{random}"


def _label(text: str) -> str:
    # Label values are at most 63 of A-Z a-z 0-9 _ . / - so that selectors can always express them.
    return re.sub(r"[^A-Za-z0-9_./-]", "_", text)[:63]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report  # teardown verifies only tests that passed
    return report


@pytest.fixture(scope="session")
def simulatord_daemon(request: pytest.FixtureRequest) -> Iterator[ThreadDaemon | EmbeddedDaemon | None]:
    """The daemon this plugin started for this test process; None when an address was given."""
    if request.config.getoption("simulatord_address") or os.environ.get("SIMULATORD_ADDRESS"):
        yield None
        return
    args = shlex.split(request.config.getoption("simulatord_daemon_args") or "")
    if request.config.getoption("simulatord_embedded") == "process":
        with EmbeddedDaemon(args) as process:
            yield process
        return
    from simulatord.embedded import ThreadDaemon

    try:
        daemon = ThreadDaemon.from_args(args)
    except SystemExit:  # argparse has printed what is wrong with them
        raise pytest.UsageError(f"--simulatord-daemon-args: not flags of `simulatord serve`: {args}") from None
    with daemon.start():
        yield daemon


@pytest.fixture(scope="session")
def simulatord_address(request: pytest.FixtureRequest, simulatord_daemon: ThreadDaemon | EmbeddedDaemon | None) -> str:
    """The gRPC address of the daemon used by this test process (started here unless one was given)."""
    if simulatord_daemon is not None:
        return simulatord_daemon.grpc_address
    return str(request.config.getoption("simulatord_address") or os.environ["SIMULATORD_ADDRESS"])


@pytest.fixture(scope="session")
def simulator(
    request: pytest.FixtureRequest,
    simulatord_address: str,
    simulatord_daemon: ThreadDaemon | EmbeddedDaemon | None,
) -> Iterator[Simulator]:
    """A `Simulator` connected to the daemon of this test process: in process when the daemon runs on a thread."""
    from simulatord_client.client import Simulator

    channel = None
    if simulatord_daemon is not None and not isinstance(simulatord_daemon, EmbeddedDaemon):
        from simulatord_client.inprocess import InProcessChannel

        channel = InProcessChannel(simulatord_daemon)
    # None leaves the token to Simulator, which reads SIMULATORD_TOKEN.
    token = request.config.getoption("simulatord_token")
    with Simulator(simulatord_address, token=token, channel=channel) as sim:
        yield sim


@pytest.fixture
def sim_session(request: pytest.FixtureRequest, simulator: Simulator) -> Iterator[Session]:
    """A fresh isolated session for this test, deleted afterwards.

    Configure with `@pytest.mark.simulatord(verify=True, ttl=..., labels={...}, stubs=[...])`; an LLM
    simulation with `@pytest.mark.simulatord(llm=llm.openai(...))`.
    """
    marker = request.node.get_closest_marker("simulatord")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    unknown = set(options) - _MARKER_KEYS
    if unknown:
        raise pytest.UsageError(f"unknown simulatord marker option(s): {', '.join(sorted(unknown))}")
    from simulatord_client.session_core import DEFAULT_TTL

    labels = {"pytest-test": _label(request.node.name), **options.get("labels", {})}
    session = simulator.session(
        options.get("tenant") or request.config.stash[_TENANT],
        session_id=_session_id(request.node.name),
        labels=labels,
        ttl=options.get("ttl", DEFAULT_TTL),
        stubs=options.get("stubs", ()),
        unmatched_status=options.get("unmatched_status", 0),
        template=options.get("template", ""),
        llm=options.get("llm"),
    )
    session.open()
    failed = True
    try:
        yield session
        failed = False
        report = request.node.stash.get(_CALL_REPORT, None)
        verify = options.get("verify", request.config.getoption("simulatord_verify"))
        if verify and report is not None and report.passed:
            session.verify()
    finally:
        # After a failure the test's own error matters; a failing delete must not bury it.
        session.close(quiet=failed)


@pytest.fixture
def mock_http_server(sim_session: Session) -> MockHttpServer:
    """A mock HTTP server (`.url`, `.register()`, `.get_requests()`, ...) backed by `sim_session`."""
    from simulatord_client.migration import MockHttpServer

    return MockHttpServer(sim_session)
