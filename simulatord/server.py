"""Runs the daemon: an ASGI server (uvicorn when installed, else hypercorn) and a grpc.aio server in one loop."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import resource
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from simulatord.config import Settings, resolve_server
from simulatord.control import recorder
from simulatord.control.auth import load_credentials
from simulatord.control.relay import ControlRelay
from simulatord.control.servicer import SimulatorServicer
from simulatord.control.templates import load_templates
from simulatord.http_front import create_app
from simulatord.http_front.dashboard import DashboardAccess
from simulatord.serving import DataPlane
from simulatord.serving.metrics import Metrics
from simulatord.serving.outbound import Outbound
from simulatord.sessions.journal import JournalLimits
from simulatord.sessions.service import Addressing, Simulator
from simulatord.sessions.store import MemoryStore, SessionStore
from simulatord.v1 import simulator_service_pb2, simulator_service_pb2_grpc
from simulatord.webhooks.targets import Targets

if TYPE_CHECKING:
    from simulatord.stores.redis_store import RedisStore

log = logging.getLogger("simulatord")
SERVICE_NAME = simulator_service_pb2.DESCRIPTOR.services_by_name["SimulatorService"].full_name
REFLECTION_SERVICE_NAME = "grpc.reflection.v1alpha.ServerReflection"  # grpc_reflection.v1alpha.reflection's


@dataclass(frozen=True)
class Bound:
    http_url: str
    grpc_address: str
    # The control plane's method handlers by path ("/simulatord.v1.SimulatorService/CreateSession"), the ones the
    # gRPC server calls: an in-process caller (simulatord.embedded) calls them too, without a round trip.
    handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]] = field(default_factory=dict)


class _Handlers:
    """Collects the method handlers generated code registers, as a server would (`add_*_to_server`)."""

    def __init__(self) -> None:
        self.by_path: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass  # the same handlers come again, by service, below

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Any]) -> None:
        self.by_path.update({f"/{service}/{method}": handler for method, handler in handlers.items()})


def _listen(host: str, port: int, what: str, flag: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: accepted sockets inherit it, and asyncio sets TCP_NODELAY only on sockets that say TCP.
    # Without it uvicorn on the asyncio loop writes a response's body after its headers only once the client's
    # delayed ACK of the headers arrives: 44 ms for every request on a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _cannot_listen(host, port, what, flag, exc) from exc
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _cannot_listen(host: str, port: int, what: str, flag: str, exc: OSError | None) -> OSError:
    """The start-up error for a port that cannot be had: which one, for what, and the flag that sets it, which
    the bare OSError ("Address already in use") does not say."""
    if exc is not None and exc.errno == errno.EADDRINUSE:
        return OSError(
            f"the {what} port {port} on {host} is in use (another simulatord?): choose another with {flag}, "
            f"or {flag} 0 for any free one"
        )
    why = exc.strerror if exc is not None else "gRPC could not bind it"
    return OSError(f"cannot listen on {host}:{port} for {what} ({why}): check --host and {flag}")


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def run(
    settings: Settings,
    on_ready: Callable[[Bound], None] | None = None,
    stop: asyncio.Event | None = None,
    signals: bool = True,
) -> None:
    """Serves until `stop` is set (or, with `signals`, SIGTERM/SIGINT arrives), then stops gracefully."""
    stop = stop or asyncio.Event()
    settings = replace(settings, server=resolve_server(settings.server, settings.tls_cert is not None))
    log.info("serving HTTP with %s on %s", settings.server, type(asyncio.get_running_loop()).__module__)
    http_sock = _listen(settings.host, settings.http_port, "HTTP", "--http-port")
    http_port = http_sock.getsockname()[1]
    shown = _display_host(settings.host)
    scheme = "https" if settings.tls_cert else "http"
    public_url = settings.public_url or f"{scheme}://{shown}:{http_port}"
    _raise_open_files_limit()
    store: SessionStore
    shared: RedisStore | None = None
    if settings.store == "memory":
        store = MemoryStore(settings.max_sessions, settings.max_sessions_per_tenant)
    else:
        from simulatord.stores.redis_store import RedisStore  # only --store redis:// loads the Redis client

        store = shared = RedisStore(settings.store, settings.max_sessions, settings.max_sessions_per_tenant)
        await shared.connect()
    simulator = Simulator(
        store,
        Addressing(public_url, settings.host_suffix),
        default_ttl=settings.default_ttl,
        default_limits=JournalLimits(
            settings.journal_max_exchanges, settings.journal_max_bytes, settings.journal_max_body_bytes
        ),
        journal_budget=settings.journal_budget_bytes,
        redact_headers=frozenset(n.strip().lower() for n in settings.redact_headers.split(",") if n.strip()),
    )
    metrics = Metrics()  # one set of counters for traffic, deliveries and control calls, read by /metrics
    outbound = Outbound(
        Targets.parse(settings.webhook_targets),
        settings.webhook_concurrency,
        settings.max_pending_deliveries,
        simulator.clock,
        metrics,
    )
    templates = load_templates(settings.templates) if settings.templates is not None else {}
    credentials = load_credentials(settings.auth) if settings.auth is not None else None

    grpc_server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    relay = ControlRelay(shared) if shared is not None else None
    servicer = SimulatorServicer(simulator, templates, credentials, outbound, metrics, relay)
    health_servicer = health.aio.HealthServicer()
    handlers = _Handlers()
    targets: tuple[Any, ...] = (grpc_server, handlers)  # generated code registers on anything server-shaped
    for target in targets:
        simulator_service_pb2_grpc.add_SimulatorServiceServicer_to_server(servicer, target)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, target)
    grpc_server.add_generic_rpc_handlers(
        [_LazyReflection((SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name))]
    )
    grpc_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    if settings.grpc_port:
        # gRPC says only "Failed to bind" (and logs the reason from C): trying the port first finds out why.
        _listen(settings.host, settings.grpc_port, "gRPC", "--grpc-port").close()
    try:
        grpc_port = grpc_server.add_insecure_port(f"{grpc_host}:{settings.grpc_port}")
    except RuntimeError as exc:  # taken between the trial and now, or refused for a reason the trial missed
        raise _cannot_listen(settings.host, settings.grpc_port, "gRPC", "--grpc-port", None) from exc
    if shared is not None:
        advertised = settings.advertise_host or (
            socket.gethostname() if settings.host in ("0.0.0.0", "::", "") else _display_host(settings.host)
        )
        loaded = await shared.start(simulator, f"{scheme}://{advertised}:{http_port}", f"{advertised}:{grpc_port}")
        log.info("replica %s took over %d sessions from the session store", shared.replica, loaded)
    await grpc_server.start()

    serving = asyncio.Event()  # set when the ASGI server has started the app (lifespan startup)
    plane = DataPlane(store, simulator.clock, outbound, metrics, recorder.record)
    if shared is not None:
        plane.locate = shared.locate_http
    dashboard = (
        # The control plane's credentials, so that a token sees the same tenants on the dashboard as over gRPC.
        DashboardAccess(
            simulator.watch_exchanges,
            simulator.addressing.base_url,
            credentials.identify if credentials is not None else None,
        )
        if settings.dashboard
        else None
    )
    app = create_app(
        plane,
        settings.host_suffix,
        settings.max_body_bytes,
        settings.max_stream_seconds,
        settings.request_read_timeout,
        on_serving=serving.set,
        dashboard=dashboard,
    )

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT) if signals else ():
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    serve_http = _uvicorn if settings.server == "uvicorn" else _hypercorn
    http_stop = asyncio.Event()  # set after `stop`, once traffic in progress has been told to finish
    http_task = asyncio.create_task(serve_http(app, http_sock, settings, http_stop))
    sweeper = asyncio.create_task(_sweep(simulator, settings.sweep_interval))
    await asyncio.wait([asyncio.create_task(serving.wait()), http_task], return_when=asyncio.FIRST_COMPLETED)
    if http_task.done():
        await http_task  # start-up failed: surface the error
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    if on_ready is not None:
        on_ready(Bound(f"{scheme}://{shown}:{http_port}", f"{shown}:{grpc_port}", handlers.by_path))

    await stop.wait()
    # Drain in order: traffic first (every exchange recorded), then the journals (watchers get the last
    # exchanges, then their streams end with OK), then the control plane.
    await health_servicer.enter_graceful_shutdown()
    plane.stop()  # waits and streams end now, WebSockets close with 1001
    if dashboard is not None:
        dashboard.stopping.set()  # and so do the dashboard's live streams
    http_stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await http_task
    with contextlib.suppress(OSError):  # hypercorn may have closed the descriptor it was given
        http_sock.close()
    sweeper.cancel()
    if shared is not None:
        await shared.close()  # every exchange is recorded by now: written before the sessions close
    if relay is not None:
        await relay.close()
        await plane.relayer.close()
    simulator.close()  # closing the sessions cancels their pending webhook deliveries
    await outbound.close()
    await grpc_server.stop(grace=2.0)


class _LazyReflection(grpc.GenericRpcHandler):
    """gRPC server reflection, as grpc_reflection's enable_server_reflection sets it up, but imported (with
    descriptor_pb2 under it) by the first reflection call rather than at start-up."""

    def __init__(self, service_names: tuple[str, ...]) -> None:
        self._service_names = (*service_names, REFLECTION_SERVICE_NAME)
        self._handler: grpc.RpcMethodHandler[Any, Any] | None = None

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        if handler_call_details.method != f"/{REFLECTION_SERVICE_NAME}/ServerReflectionInfo":
            return None
        if self._handler is None:
            from grpc_reflection.v1alpha import reflection, reflection_pb2

            servicer = reflection.aio.ReflectionServicer(self._service_names)
            self._handler = grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        return self._handler


async def _hypercorn(app: Any, sock: socket.socket, settings: Settings, stop: asyncio.Event) -> None:
    # Imported here: only the chosen server's modules are loaded, which keeps start-up short.
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.accesslog = None
    config.errorlog = log
    config.graceful_timeout = 2.0
    config.keep_alive_timeout = 75.0
    if settings.tls_cert:  # hypercorn then serves the bound socket over TLS and offers h2 and http/1.1 by ALPN
        config.certfile = str(settings.tls_cert)
        config.keyfile = str(settings.tls_key) if settings.tls_key else None
    await serve(app, config, shutdown_trigger=stop.wait)


def _websockets_sansio(**kwargs: Any) -> Any:
    """uvicorn's websockets-sansio protocol, imported by the first WebSocket upgrade rather than at start-up
    (websockets and the protocol take about 40 ms to import here). uvicorn calls the class it is given with
    keywords only (config, server_state, app_state), so this factory stands in for it."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    return WebSocketsSansIOProtocol(**kwargs)


async def _uvicorn(app: Any, sock: socket.socket, settings: Settings, stop: asyncio.Event) -> None:
    """uvicorn with httptools: HTTP/1.1 and WebSockets only, no HTTP/2 (h2c or by ALPN over TLS)."""
    try:
        import uvicorn
    except ImportError as exc:  # an optional extra, like uvloop
        raise OSError("--server uvicorn needs uvicorn and httptools: pip install 'simulatord[fast]'") from exc

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # The daemon owns SIGTERM/SIGINT and stops gRPC and HTTP together; uvicorn would take the
            # signals over and re-raise them after its own shutdown.
            yield

    config = uvicorn.Config(
        app,
        http="httptools",
        # Not wsproto: uvicorn's wsproto protocol drops the handshake headers (Sec-WebSocket-Protocol among
        # them) from the scope, which stubs match and the journal records. websockets comes with the extra.
        ws=_websockets_sansio,  # type: ignore[arg-type]
        lifespan="on",
        interface="asgi3",
        log_config=None,
        access_log=False,
        proxy_headers=False,  # hypercorn does not rewrite the client from X-Forwarded-* either
        timeout_keep_alive=75,
        timeout_graceful_shutdown=2,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
    )
    server = Server(config)

    async def stop_when_asked() -> None:
        await stop.wait()
        server.should_exit = True

    stopper = asyncio.create_task(stop_when_asked())
    try:
        await server.serve(sockets=[sock])
    finally:
        stopper.cancel()


# A sweep later than this past its interval means the event loop was blocked (no RPC, no heartbeat served).
STALL_TOLERANCE = 0.25
# After journals release this much, glibc is asked to give free memory back to the system: it otherwise keeps
# the heap a deleted session's bodies grew, and the daemon's RSS never comes down.
TRIM_AFTER_BYTES = 64 * 1024 * 1024


def _return_memory() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not glibc (musl, macOS): nothing to ask
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _raise_open_files_limit() -> None:
    """Up to the hard limit: every client connection is a descriptor, and the soft default (often 1,024) is
    what a few hundred slow clients exhaust."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def _sweep(simulator: Simulator, interval: float) -> None:
    loop = asyncio.get_running_loop()
    due = loop.time() + interval
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))
        late = loop.time() - due
        # The stall may have begun up to one interval before the sweep was due: extend by the most it can be.
        stalled = late + interval if late > STALL_TOLERANCE else 0.0
        if stalled:
            log.warning("the event loop was blocked for %.1f s: session leases extended by as much", stalled)
        removed = simulator.sweep_expired(stalled)
        if removed:
            log.info("removed %d expired session(s)", removed)
        if simulator.pool.released_bytes >= TRIM_AFTER_BYTES:
            simulator.pool.released_bytes = 0
            _return_memory()
        due = loop.time() + interval


def print_ready(bound: Bound) -> None:
    print(f"simulatord ready http={bound.http_url} grpc={bound.grpc_address}", flush=True)
    sys.stdout.flush()
