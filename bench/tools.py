"""One adapter per benchmarked server (simulatord, WireMock, mountebank, pytest-httpserver): start,
stop, journal clearing and the per-test cycle through each tool's best API; and the loopback receiver the
webhook measurement delivers to."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

import httpx
from procs import Proc, free_port

HELLO = {"message": "hello"}
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK = Path(os.environ.get("BENCH_WORK", REPO / ".bench-work"))
NPM = WORK / "npm" / "node_modules"
POLL_S = 0.005  # start-up poll interval: the same for every tool, so its error (~2.5 ms) is shared


def _poll(client: httpx.Client, url: str, proc: Proc, ok, timeout: float = 120.0) -> None:
    """Polls url until ok(response) holds; fails fast if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ok(client.get(url)):
                return
        except httpx.HTTPError:
            pass
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; see its logs")
        time.sleep(POLL_S)
    raise TimeoutError(f"{proc.name}: {url} not serving after {timeout}s")


def _poll_hello(client: httpx.Client, url: str, proc: Proc) -> None:
    """Until url answers 200 with the hello body."""
    _poll(client, url, proc, lambda r: r.status_code == 200 and r.json() == HELLO)


def _poll_ok(client: httpx.Client, url: str, proc: Proc) -> None:
    """Until url answers 200 (a peer's own health or config endpoint)."""
    _poll(client, url, proc, lambda r: r.status_code == 200)


def _check_hello(r: httpx.Response) -> None:
    if r.status_code != 200 or r.json() != HELLO:
        raise AssertionError(f"unexpected hello answer {r.status_code}: {r.text[:200]}")


class Tool:
    """Base adapter. `start()` returns ms from spawn to the first 200 on the /hello stub."""

    name = "?"
    proc: Proc | None = None
    hello_url = ""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        # One persistent client per adapter, shared by admin calls, polling and the cycle's data request.
        self.http = httpx.Client(timeout=30)

    def start(self, preload: bool = False) -> float:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()
            self.proc = None

    def close(self) -> None:
        self.stop()
        self.http.close()

    def clear_journal(self) -> None:
        """Empties the recorded requests so each load run starts from the same state."""

    def cycle_setup(self) -> None:
        """Anything the cycle loop needs once (clients, workers)."""

    def cycles(self, n: int) -> list[float]:
        raise NotImplementedError

    def version(self) -> str:
        return "?"


class WireMock(Tool):
    name = "wiremock"

    def _jar(self) -> Path:
        jars = sorted((NPM / "wiremock" / "build").glob("wiremock-standalone-*.jar"))
        if not jars:
            raise FileNotFoundError("WireMock jar missing: run bench/setup.sh")
        return jars[-1]

    def version(self) -> str:
        return self._jar().stem.replace("wiremock-standalone-", "")

    def start(self, preload: bool = False) -> float:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.hello_url = self.base + "/hello"
        # A fresh root dir per start: with preload it holds the stub as a mapping file (WireMock's own
        # fastest path to a served stub); without, it is empty so /__admin/reset re-reads no files.
        root = WORK / "run" / f"wiremock-root-{self.port}"
        shutil.rmtree(root, ignore_errors=True)
        (root / "mappings").mkdir(parents=True)
        if preload:
            (root / "mappings" / "hello.json").write_text(json.dumps(self._mapping()))
        argv = [
            "java",
            "-jar",
            str(self._jar()),
            "--port",
            str(self.port),
            "--bind-address",
            "127.0.0.1",
            "--root-dir",
            str(root),
            "--disable-banner",
        ]
        t0 = time.perf_counter()
        self.proc = Proc(self.name, argv, self.logdir)
        if not preload:
            _poll_ok(self.http, self.base + "/__admin/health", self.proc)
            self.http.post(self.base + "/__admin/mappings", json=self._mapping()).raise_for_status()
        _poll_hello(self.http, self.hello_url, self.proc)
        return (time.perf_counter() - t0) * 1000

    @staticmethod
    def _mapping(url_path: str = "/hello") -> dict:
        return {
            "request": {"method": "GET", "urlPath": url_path},
            "response": {"status": 200, "jsonBody": HELLO, "headers": {"Content-Type": "application/json"}},
        }

    def clear_journal(self) -> None:
        self.http.delete(self.base + "/__admin/requests").raise_for_status()

    def cycles(self, n: int) -> list[float]:
        h, base, out = self.http, self.base, []
        for _ in range(n):
            t0 = time.perf_counter()
            h.post(base + "/__admin/mappings", json=self._mapping()).raise_for_status()
            r = h.get(self.hello_url)
            reqs = h.get(base + "/__admin/requests").json()["requests"]
            h.post(base + "/__admin/reset").raise_for_status()
            out.append((time.perf_counter() - t0) * 1000)
            _check_hello(r)
            assert len(reqs) == 1, reqs
        return out

    def restore_hello(self) -> None:
        """After cycles (whose reset removed every stub), put the load-test stub back."""
        self.http.post(self.base + "/__admin/mappings", json=self._mapping()).raise_for_status()

    def import_mappings(self, mappings: list[dict]) -> None:
        self.http.post(
            self.base + "/__admin/mappings/import", json={"mappings": mappings}, timeout=600
        ).raise_for_status()


class Mountebank(Tool):
    name = "mountebank"

    def version(self) -> str:
        return json.loads((NPM / "mountebank" / "package.json").read_text())["version"]

    def _imposter(self, port: int | None) -> dict:
        imp = {
            "protocol": "http",
            # Not mountebank's default, but every other tool records and the cycle needs it.
            "recordRequests": True,
            "stubs": [
                {
                    "predicates": [{"equals": {"method": "GET", "path": "/hello"}}],
                    "responses": [
                        {"is": {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": HELLO}}
                    ],
                }
            ],
        }
        if port:
            imp["port"] = port
        return imp

    def start(self, preload: bool = False) -> float:
        self.port = free_port()
        self.imposter_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.hello_url = f"http://127.0.0.1:{self.imposter_port}/hello"
        cwd = WORK / "run" / f"mb-{self.port}"
        cwd.mkdir(parents=True, exist_ok=True)
        argv = [
            str(NPM / ".bin" / "mb"),
            "start",
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
            "--localOnly",
            "--nologfile",
            "--pidfile",
            str(cwd / "mb.pid"),
            # Default is info, which logs every imposter request; warn keeps mb's data plane
            # comparable to servers that do not log per request (favours mountebank).
            "--loglevel",
            "warn",
        ]
        if preload:
            cfg = cwd / "imposters.json"
            cfg.write_text(json.dumps({"imposters": [self._imposter(self.imposter_port)]}))
            argv += ["--configfile", str(cfg), "--noParse"]
        t0 = time.perf_counter()
        self.proc = Proc(self.name, argv, self.logdir, cwd=cwd)
        if not preload:
            _poll_ok(self.http, self.base + "/config", self.proc)
            self.http.post(self.base + "/imposters", json=self._imposter(self.imposter_port)).raise_for_status()
        _poll_hello(self.http, self.hello_url, self.proc)
        return (time.perf_counter() - t0) * 1000

    def clear_journal(self) -> None:
        self.http.delete(f"{self.base}/imposters/{self.imposter_port}/savedRequests").raise_for_status()

    def cycle_setup(self) -> None:
        # Every cycle creates a new imposter (a new listening socket), so a pooled keep-alive
        # connection could never be reused; mountebank also answers `Connection: close`.
        self.data = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))

    def cycles(self, n: int) -> list[float]:
        h, base, out = self.http, self.base, []
        for _ in range(n):
            t0 = time.perf_counter()
            created = h.post(base + "/imposters", json=self._imposter(None))
            created.raise_for_status()
            port = created.json()["port"]
            r = self.data.get(f"http://127.0.0.1:{port}/hello")
            reqs = h.get(f"{base}/imposters/{port}").json()["requests"]
            h.delete(f"{base}/imposters/{port}").raise_for_status()
            out.append((time.perf_counter() - t0) * 1000)
            _check_hello(r)
            assert len(reqs) == 1, reqs
        return out


class PytestHttpserver(Tool):
    name = "pytest-httpserver"
    worker: Proc | None = None

    def version(self) -> str:
        return metadata.version("pytest-httpserver")

    def start(self, preload: bool = False) -> float:
        script = str(BENCH_DIR / "peers" / "httpserver_peer.py")
        self.port = free_port()
        self.hello_url = f"http://127.0.0.1:{self.port}/hello"
        t0 = time.perf_counter()
        self.proc = Proc(self.name, [sys.executable, script, "serve", "--port", str(self.port)], self.logdir)
        _poll_hello(self.http, self.hello_url, self.proc)
        return (time.perf_counter() - t0) * 1000

    def clear_journal(self) -> None:
        # The server runs in another process here; restarting it is the only way to empty its log.
        # Cheap (about half a second) and it happens outside any timed window.
        self.stop()
        self.start()

    def cycle_setup(self) -> None:
        # In a real suite the server lives in the test process; the worker reproduces exactly that.
        if self.worker is None:
            script = str(BENCH_DIR / "peers" / "httpserver_peer.py")
            self.worker = Proc(self.name + "-cycle", [sys.executable, script, "cycle-worker"], self.logdir, stdin=True)
            self.worker.wait_line(lambda s: s == "ready", 60)

    def cycles(self, n: int) -> list[float]:
        assert self.worker is not None and self.worker.popen.stdin is not None
        self.worker.popen.stdin.write(f"{n}\n".encode())
        self.worker.popen.stdin.flush()
        return json.loads(self.worker.wait_line(lambda s: s.startswith("["), 600))

    def close(self) -> None:
        if self.worker:
            self.worker.stop()
            self.worker = None
        super().close()


class Simulatord(Tool):
    name = "simulatord"
    EMBEDDED = True  # this row also measures the pytest plugin's embedded daemon (its server: auto, as here)

    def __init__(self, logdir: Path) -> None:
        super().__init__(logdir)
        # Imported lazily so the peers can be benchmarked before the daemon exists.
        import grpc
        from google.protobuf import struct_pb2

        from simulatord.v1 import simulator_service_pb2 as svc
        from simulatord.v1 import simulator_service_pb2_grpc as svc_grpc
        from simulatord.v1 import stub_pb2

        self.grpc, self.svc, self.svc_grpc, self.stub_pb2 = grpc, svc, svc_grpc, stub_pb2
        body = struct_pb2.Value()
        body.struct_value.update(HELLO)
        self.hello_body = body
        self.hello_stub = self.make_stub("/hello", body)
        self.channel = None
        self.embedded: Proc | None = None

    def make_stub(self, path: str, body):
        s = self.stub_pb2
        return s.Stub(
            request=s.RequestMatcher(method="GET", path=s.PathMatcher(exact=path)),
            responses=[s.Response(status=200, body_json=body)],
        )

    def version(self) -> str:
        try:
            return metadata.version("simulatord")
        except metadata.PackageNotFoundError:
            return "?"

    def exe(self) -> str:
        # The bench venv's console script (editable install of this checkout).
        cand = Path(sys.executable).parent / "simulatord"
        return str(cand) if cand.exists() else "simulatord"

    def start(self, preload: bool = False, extra_args: list[str] | None = None) -> float:
        argv = [self.exe(), "serve", "--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0"]
        # Webhooks go to the bench's own receiver on 127.0.0.1 and nowhere else.
        argv += ["--webhook-targets", "loopback", *(extra_args or [])]
        t0 = time.perf_counter()
        self.proc = Proc(self.name, argv, self.logdir)
        line = self.proc.wait_line(lambda s: s.startswith("simulatord ready "), 120)
        fields = dict(kv.split("=", 1) for kv in line.split()[2:])
        self.http_base, self.grpc_target = fields["http"], fields["grpc"]
        self.channel = self.grpc.insecure_channel(self.grpc_target)
        self.api = self.svc_grpc.SimulatorServiceStub(self.channel)
        sess = self.api.CreateSession(
            self.svc.CreateSessionRequest(parent="tenants/bench", stubs=[self.hello_stub]),
            wait_for_ready=True,
            timeout=30,
        ).session
        self.session = sess
        self.hello_url = sess.base_url + "/hello"
        _poll_hello(self.http, self.hello_url, self.proc)
        return (time.perf_counter() - t0) * 1000

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        super().stop()

    def clear_journal(self) -> None:
        svc = self.svc
        self.api.ResetSession(
            svc.ResetSessionRequest(name=self.session.name, targets=[svc.RESET_TARGET_JOURNAL]), timeout=30
        )

    def cycles(self, n: int) -> list[float]:
        svc, api, h, out = self.svc, self.api, self.http, []
        req = svc.CreateSessionRequest(parent="tenants/bench", stubs=[self.hello_stub])
        for _ in range(n):
            t0 = time.perf_counter()
            sess = api.CreateSession(req, timeout=30).session
            r = h.get(sess.base_url + "/hello")
            ex = api.ListExchanges(svc.ListExchangesRequest(parent=sess.name), timeout=30)
            api.DeleteSession(svc.DeleteSessionRequest(name=sess.name), timeout=30)
            out.append((time.perf_counter() - t0) * 1000)
            _check_hello(r)
            assert len(ex.exchanges) == 1, ex
        return out

    def cycle_setup(self) -> None:
        # The plugin's default: the daemon on a thread of the test process, reached in process. Like
        # pytest-httpserver, it runs in a worker process of its own that times its own loop.
        if self.embedded is None and self.EMBEDDED:
            script = str(BENCH_DIR / "peers" / "embedded_peer.py")
            self.embedded = Proc(
                self.name + "-embedded", [sys.executable, script, "cycle-worker"], self.logdir, stdin=True
            )
            self.embedded.wait_line(lambda s: s == "ready", 60)

    def cycles_embedded(self, n: int) -> list[float]:
        """The cycle through simulatord_client against the pytest plugin's embedded daemon (thread, in process)."""
        assert self.embedded is not None and self.embedded.popen.stdin is not None
        self.embedded.popen.stdin.write(f"{n}\n".encode())
        self.embedded.popen.stdin.flush()
        return json.loads(self.embedded.wait_line(lambda s: s.startswith("["), 600))

    def start_embedded(self) -> float:
        """Start-up of the plugin's embedded daemon in a fresh test process, to the first answered request."""
        script = str(BENCH_DIR / "peers" / "embedded_peer.py")
        out = subprocess.run([sys.executable, script, "startup"], capture_output=True, text=True, timeout=120)
        if out.returncode:
            raise RuntimeError(out.stderr[-2000:])
        return float(out.stdout.strip().splitlines()[-1])

    def close(self) -> None:
        if self.embedded:
            self.embedded.stop()
            self.embedded = None
        super().close()

    def control_latencies(self, rounds: int) -> dict[str, list[float]]:
        """Milliseconds per RPC name, one sample per round."""
        out: dict[str, list[float]] = {}
        for _ in range(max(3, rounds // 10)):  # untimed warm-up
            control_round(self, {})
        for _ in range(rounds):
            control_round(self, out)
        return out

    def cycles_client(self, n: int) -> list[float]:
        """The same cycle through simulatord_client as a test author writes it (heartbeat included)."""
        from simulatord_client import Simulator, stub

        sim = Simulator(self.grpc_target, channel=self.channel)  # shares the persistent channel
        hello = stub("GET", "/hello", json=HELLO)
        h, out = self.http, []
        for _ in range(n):
            t0 = time.perf_counter()
            with sim.session(tenant="bench", stubs=[hello]) as s:
                r = h.get(s.url + "/hello")
                reqs = s.exchanges()
            out.append((time.perf_counter() - t0) * 1000)
            _check_hello(r)
            assert len(reqs) == 1, reqs
        return out

    # -- webhooks (the llm_webhooks phase) -----------------------------------------------------------------
    def webhook_setup(self, receiver: LoopbackReceiver) -> None:
        """A session to deliver from, and the webhook: a GitHub `push`, signed, to the loopback receiver."""
        from google.protobuf import struct_pb2

        from simulatord.v1 import webhook_pb2

        svc = self.svc
        self.webhook_session = self.api.CreateSession(
            svc.CreateSessionRequest(parent="tenants/bench-webhooks"), timeout=30
        ).session
        body = struct_pb2.Value()
        body.struct_value.update(GITHUB_PUSH)
        self.webhook = webhook_pb2.Webhook(
            url=receiver.url + "/hooks/github",
            event="push",
            body_json=body,
            signing=webhook_pb2.WebhookSigning(
                profile=webhook_pb2.SIGNING_PROFILE_GITHUB, secrets=[receiver.secret.decode()]
            ),
        )

    def deliver(self, count: int) -> None:
        """One DeliverWebhooks call of `count` webhooks with wait=true; fails unless every one was delivered."""
        from google.protobuf import duration_pb2

        from simulatord.v1 import webhook_pb2

        reply = self.api.DeliverWebhooks(
            self.svc.DeliverWebhooksRequest(
                parent=self.webhook_session.name,
                webhooks=[self.webhook] * count,
                wait=True,
                timeout=duration_pb2.Duration(seconds=120),
            ),
            timeout=150,
        )
        bad = [d for d in reply.deliveries if d.state != webhook_pb2.DELIVERY_STATE_DELIVERED]
        if len(reply.deliveries) != count or bad:
            raise AssertionError(f"{len(bad)} of {count} webhooks not delivered: {bad[:1]}")

    def webhook_latencies(self, rounds: int, out: dict[str, list[float]]) -> None:
        """Milliseconds per round, each step timed on its own: the gRPC floor (Health.Check), one GET of the
        plain stub, and one DeliverWebhooks of one webhook with wait=true (one gRPC round trip in, one HTTP
        request out from the daemon, the receiver's answer, the reply)."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        check = health_pb2_grpc.HealthStub(self.channel).Check
        for _ in range(rounds):
            _timed(out, "health", check, health_pb2.HealthCheckRequest(), timeout=30)
            r = _timed(out, "plain_get", self.http.get, self.hello_url)
            _check_hello(r)
            _timed(out, "deliver_one", self.deliver, 1)


# A GitHub `push` event's outline (about 400 bytes): what the receiver verifies and the daemon signs.
GITHUB_PUSH = {
    "ref": "refs/heads/main",
    "before": "0" * 40,
    "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    "repository": {"id": 1296269, "full_name": "octocat/Hello-World", "private": False},
    "pusher": {"name": "octocat", "email": "octocat@github.com"},
    "head_commit": {
        "id": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "message": "Update README",
        "timestamp": "2026-01-01T00:00:00Z",
    },
}


class LoopbackReceiver:
    """The code under test's webhook endpoint, as fast as a Python receiver gets: an asyncio server on
    127.0.0.1 in its own thread, HTTP/1.1 with keep-alive, 200 with an empty body. It checks every request's
    GitHub signature (`X-Hub-Signature-256`) and counts the requests and the bad signatures."""

    def __init__(self, secret: bytes = b"bench-webhook-secret") -> None:
        self.secret = secret
        self.received = 0
        self.bad_signatures = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-receiver", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the webhook receiver did not start")
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # one request after another on a kept-alive connection
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.split(b"\r\n")[1:]:
                    name, sep, value = line.partition(b":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
                expected = b"sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest().encode()
                self.received += 1
                if not hmac.compare_digest(headers.get(b"x-hub-signature-256", b""), expected):
                    self.bad_signatures += 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass  # the daemon closed the connection (or sent something this receiver does not parse)
        finally:
            writer.close()

    def close(self) -> None:
        def stop() -> None:
            self._server.close()
            self._loop.stop()

        with contextlib.suppress(RuntimeError):  # already stopped
            self._loop.call_soon_threadsafe(stop)
        self._thread.join(5)


def _timed(out: dict[str, list[float]], name: str, call, *args, **kwargs):
    t0 = time.perf_counter()
    result = call(*args, **kwargs)
    out.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
    return result


def control_round(tool: Simulatord, out: dict[str, list[float]]) -> None:
    """One session's whole life over gRPC, every unary RPC once, each timed on its own."""
    svc, api, t = tool.svc, tool.api, 30
    from google.protobuf import duration_pb2
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    # The floor: the standard health check does no work of ours, so it is what one gRPC round trip costs.
    _timed(out, "Health.Check (floor)", health_pb2_grpc.HealthStub(tool.channel).Check, health_pb2.HealthCheckRequest())
    sess = _timed(out, "CreateSession", api.CreateSession, svc.CreateSessionRequest(parent="tenants/ctl"), timeout=t)
    name = sess.session.name
    _timed(out, "GetSession", api.GetSession, svc.GetSessionRequest(name=name), timeout=t)
    _timed(out, "ListSessions", api.ListSessions, svc.ListSessionsRequest(parent="tenants/ctl"), timeout=t)
    stub = _timed(
        out, "CreateStub", api.CreateStub, svc.CreateStubRequest(parent=name, stub=tool.hello_stub), timeout=t
    ).stub
    _timed(
        out,
        "BatchCreateStubs (3)",
        api.BatchCreateStubs,
        svc.BatchCreateStubsRequest(
            parent=name,
            requests=[svc.CreateStubRequest(stub=tool.make_stub(f"/b{i}", tool.hello_body)) for i in range(3)],
        ),
        timeout=t,
    )
    _timed(out, "GetStub", api.GetStub, svc.GetStubRequest(name=stub.name), timeout=t)
    _timed(out, "ListStubs", api.ListStubs, svc.ListStubsRequest(parent=name), timeout=t)
    _timed(out, "ReplaceStub", api.ReplaceStub, svc.ReplaceStubRequest(stub=stub), timeout=t)
    _check_hello(tool.http.get(sess.session.base_url + "/hello"))
    _timed(out, "GetExchange", api.GetExchange, svc.GetExchangeRequest(name=f"{name}/exchanges/1"), timeout=t)
    _timed(out, "ListExchanges", api.ListExchanges, svc.ListExchangesRequest(parent=name), timeout=t)
    _timed(out, "CountExchanges", api.CountExchanges, svc.CountExchangesRequest(parent=name), timeout=t)
    waited = _timed(
        out,
        "WaitForExchanges (already there)",
        api.WaitForExchanges,
        svc.WaitForExchangesRequest(parent=name, count=1, timeout=duration_pb2.Duration(seconds=5)),
        timeout=t,
    )
    assert waited.satisfied, waited
    _timed(out, "SetSessionState", api.SetSessionState, svc.SetSessionStateRequest(name=name, state="s"), timeout=t)
    _timed(out, "VerifySession", api.VerifySession, svc.VerifySessionRequest(name=name), timeout=t)
    _timed(out, "RefreshSession", api.RefreshSession, svc.RefreshSessionRequest(name=name), timeout=t)
    _timed(
        out,
        "ResetSession (journal)",
        api.ResetSession,
        svc.ResetSessionRequest(name=name, targets=[svc.RESET_TARGET_JOURNAL]),
        timeout=t,
    )
    _timed(out, "DeleteStub", api.DeleteStub, svc.DeleteStubRequest(name=stub.name), timeout=t)
    _timed(out, "DeleteSession", api.DeleteSession, svc.DeleteSessionRequest(name=name), timeout=t)


class SimulatordHypercorn(Simulatord):
    """The same daemon, app and tests on hypercorn and the asyncio loop: the server for HTTP/2, and the default
    where the fast extra is not installed (the `simulatord` row runs what `--server auto` picks: uvicorn)."""

    name = "simulatord-hypercorn"
    ARGS = ["--server", "hypercorn", "--loop", "asyncio"]
    EMBEDDED = False

    def start(self, preload: bool = False, extra_args: list[str] | None = None) -> float:
        return super().start(preload, [*self.ARGS, *(extra_args or [])])


ALL = {t.name: t for t in (Simulatord, SimulatordHypercorn, WireMock, Mountebank, PytestHttpserver)}
