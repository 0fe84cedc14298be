"""signvault's speed, measured honestly: `python -m bench.run` (add --quick for a short run).

Starts a fake exchange (optionally with a fixed latency), nginx as a plain reverse proxy with no
signing (when installed), and signvault (one worker, SQLite); drives each with wrk at several
concurrency levels for private GET and POST requests, then at fixed offered loads, then with 64
clients against an exchange that answers in 20 ± 10 ms; measures /sign, resident memory, and the
cost with 10, 10,000 and 100,000 stored credentials. Prints one markdown report.

Everything runs on this machine, loopback only, so absolute numbers are lower than on separate hosts;
compare rows of one run. With two cores or more, the proxy under test (signvault or nginx) gets the
last core to itself and wrk and the fake exchange share the others, as a deployment gives a worker
its own core: on 2 shared cores, wrk and the fake exchange took turns on signvault's core, and its
added p50 at ~3,000 req/s was 0.78-0.84 ms against 0.45-0.57 ms pinned. `--no-pin` shares every core.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SIGNVAULT = str(Path(sys.executable).parent / "signvault")
ADMIN_TOKEN = "sva_bench-admin-token-0123456789"
MASTER_KEY = base64.b64encode(b"B" * 32).decode()
BUSY_POLL = "signvault, busy poll"
BUSY_POLL_NOTE = (f"`{BUSY_POLL}`: a second worker with SIGNVAULT_BUSY_POLL=true, on the same core, measured "
                  "after the others: its event loop spins instead of sleeping, and keeps the core busy.")
ORDER = '{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"1"}'
PRIVATE = (("GET", "/api/v5/account/balance", ""), ("POST", "/api/v5/trade/order", ORDER))  # (method, path, body)
SIGN_BODY = json.dumps({"credential": "bench", "method": "GET", "path": PRIVATE[0][1]})
# What a bot's HTTP library sends with every request (ccxt on requests, here), and to the proxy the
# placeholder OKX credentials it signs with: signvault strips them and signs afresh. wrk adds Host,
# and Content-Type and Content-Length with a body.
HTTP_CLIENT_HEADERS = {"User-Agent": "python-requests/2.32.3", "Accept-Encoding": "gzip, deflate",
                       "Accept": "*/*", "Connection": "keep-alive"}
PLACEHOLDER_AUTH = {"OK-ACCESS-KEY": "placeholder", "OK-ACCESS-PASSPHRASE": "placeholder",
                    "OK-ACCESS-TIMESTAMP": "2026-11-22T10:00:00.000Z",
                    "OK-ACCESS-SIGN": "cGxhY2Vob2xkZXItc2lnbmF0dXJlLCBzdHJpcHBlZA=="}


@dataclass
class Result:
    target: str
    method: str
    concurrency: int
    rps: float
    p50: float
    p90: float
    p99: float
    errors: int
    offered: float = 0  # req/s offered in all, for a fixed-load row; 0 in a closed loop


@dataclass
class Cores:
    """Where the bench's processes run; main() decides once. None: wherever the OS likes."""

    proxy: set[int] | None = None  # signvault and nginx
    load: set[int] | None = None  # wrk and the fake exchange

    def pin(self) -> None:
        available = sorted(os.sched_getaffinity(0))
        if len(available) >= 2:
            self.proxy, self.load = set(available[-1:]), set(available[:-1])

    def describe(self) -> str:
        if self.proxy is None:
            return "no pinning"
        return f"the proxy under test pinned to core {min(self.proxy)}, wrk and the fake exchange to the others"


CORES = Cores()


def _on(cpus: set[int] | None) -> Any:
    """A preexec_fn that pins the child (and every thread it starts) to `cpus`."""
    return None if cpus is None else lambda: os.sched_setaffinity(0, cpus)


def interpreter() -> str:
    """The Python that runs signvault (this one), and how fast it runs a fixed piece of pure Python
    on this machine: run the benchmark from a virtualenv on the interpreter you deploy. pyenv's
    default build (no profile-guided optimisation, no LTO, a shared libpython) took ~10% more
    instructions per proxied GET than Debian's python3.11 and ~25% more time on this piece, though
    interleaved runs of the two showed no difference beyond the drift (bench/HISTORY.md, item 33)."""

    def piece() -> float:
        start = time.perf_counter()
        table = {str(i): i for i in range(100_000)}
        sum(value for key, value in table.items() if key.endswith("7"))
        json.loads(json.dumps([{"id": i, "name": str(i)} for i in range(10_000)]))
        return time.perf_counter() - start

    best = min(piece() for _ in range(7))
    return (f"Python {sys.version.split()[0]} ({os.path.realpath(sys.executable)}; "
            f"a fixed piece of pure Python in {best * 1000:.0f} ms)")


def idle_polling() -> str:
    """How this machine's idle cores wait for work. On a KVM guest with the `haltpoll` idle driver,
    `guest_halt_poll_ns` is how long an idle core polls before it halts: the kernel's default is
    200 µs, and some VMs boot with 0, where every wake-up is an exit to the hypervisor and back. That
    setting alone moved one connection's added p50 from 0.47 to 0.14 ms (bench/results/2026-11-22j.md)."""
    driver = _read("/sys/devices/system/cpu/cpuidle/current_driver") or "unknown"
    polling = _read("/sys/module/haltpoll/parameters/guest_halt_poll_ns") if driver == "haltpoll" else None
    if polling is None or not polling.isdigit():
        return f"idle driver {driver}"
    return f"idle driver haltpoll, polling {int(polling) / 1000:g} µs before halting"


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1, verify=EXCHANGE.verify).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"bench: {url} did not come up")


@contextmanager
def process(args: list[str], env: dict[str, str] | None = None,
            cpus: set[int] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=_on(cpus))
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class ExchangeLink:
    """How the fake exchange is reached; main() decides once. Exchanges answer over TLS, and a
    request's share of encrypting and decrypting it is part of what signvault costs; plain HTTP
    (`--plain-exchange`) is how runs before 2026-11-22e reached it."""

    tls: tuple[Path, Path] | None = None  # the fake exchange's certificate and key

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def verify(self) -> str | bool:
        return str(self.tls[0]) if self.tls else True

    def use_tls(self, folder: Path) -> None:
        self.tls = self_signed_certificate(folder)


EXCHANGE = ExchangeLink()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1, its own issuer: the fake exchange's, trusted by signvault."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "exchange-cert.pem", folder / "exchange-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def fake_exchange(latency_ms: float, jitter_ms: float = 0) -> tuple[list[str], dict[str, str], str]:
    """The fake exchange's command, environment and origin (over TLS unless EXCHANGE says not)."""
    port = free_port()
    tls = ["--ssl-certfile", str(EXCHANGE.tls[0]), "--ssl-keyfile", str(EXCHANGE.tls[1])] if EXCHANGE.tls else []
    return ([sys.executable, "-m", "uvicorn", "bench.fake_exchange:app", "--port", str(port), "--log-level",
             "warning", "--no-access-log", "--loop", "uvloop", "--http", "httptools", *tls,
             # An idle connection stays open 75 s, as nginx's default (uvicorn's is 5 s): a proxy waiting its
             # turn while the rows before it run would otherwise start its own with a reconnect per client,
             # a TLS handshake each, and measure those instead of its steady state.
             "--timeout-keep-alive", "75"],
            {"BENCH_LATENCY_MS": str(latency_ms), "BENCH_JITTER_MS": str(jitter_ms), "PYTHONPATH": str(ROOT)},
            f"{EXCHANGE.scheme}://127.0.0.1:{port}")


def nginx_conf(workdir: Path, listen: int, upstream: str) -> Path:
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
worker_processes 1; daemon off; pid {workdir}/nginx.pid; error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off; client_body_temp_path {workdir}/body; proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fcgi; uwsgi_temp_path {workdir}/uwsgi; scgi_temp_path {workdir}/scgi;
  upstream exchange {{ server {upstream.partition("://")[2]}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{listen};
    location / {{ proxy_pass {upstream.partition("://")[0]}://exchange; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_ssl_session_reuse on; }}
  }}
}}""")
    return conf


def signvault_env(workdir: Path, exchange: str, port: int, log_level: str = "WARNING") -> dict[str, str]:
    return {
        "SIGNVAULT_DATA_DIR": str(workdir), "SIGNVAULT_MASTER_KEY": MASTER_KEY, "SIGNVAULT_ADMIN_TOKEN": ADMIN_TOKEN,
        "SIGNVAULT_EXCHANGE_URLS": json.dumps({"okx": exchange}),
        "SIGNVAULT_EGRESS_ECHO_URL": "", "SIGNVAULT_LOG_LEVEL": log_level, "SIGNVAULT_PORT": str(port),
        # OpenSSL's default trust store, which signvault's client loads: the fake exchange's certificate alone.
        **({"SSL_CERT_FILE": str(EXCHANGE.tls[0])} if EXCHANGE.tls else {}),
    }


def start_signvault(stack: ExitStack, workdir: Path, exchange: str, log_level: str,
                    env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """One signvault worker on `workdir`, ready; stopped when `stack` closes. Returns it and its base URL."""
    port = free_port()
    signvault = stack.enter_context(process([SIGNVAULT, "serve", "--port", str(port)],
                                            {**signvault_env(workdir, exchange, port, log_level),
                                             "PYTHONPATH": str(ROOT), **(env or {})}, CORES.proxy))
    base = f"http://127.0.0.1:{port}"
    wait_ready(base + "/healthz")
    return signvault, base


@dataclass
class Stack:
    """One fake exchange with nginx (when installed) and one signvault worker in front of it."""

    signvault: subprocess.Popen[bytes]
    base: str  # signvault's
    exchange: str  # the fake exchange's origin
    targets: list[tuple[str, str, dict[str, str]]]  # (name, URL, headers): direct, nginx, signvault


def start_stack(stack: ExitStack, workdir: Path, log_level: str, latency_ms: float, jitter_ms: float = 0) -> Stack:
    workdir.mkdir(exist_ok=True)
    cmd, env, exchange = fake_exchange(latency_ms, jitter_ms)
    stack.enter_context(process(cmd, env, CORES.load))
    wait_ready(exchange + "/api/v5/public/time")
    targets: list[tuple[str, str, dict[str, str]]] = [("direct", exchange, PLACEHOLDER_AUTH)]
    if shutil.which("nginx"):
        nginx_port = free_port()
        for name in ("body", "proxy", "fcgi", "uwsgi", "scgi"):
            (workdir / name).mkdir()
        stack.enter_context(process(["nginx", "-c", str(nginx_conf(workdir, nginx_port, exchange)),
                                     "-p", str(workdir)], cpus=CORES.proxy))
        targets.append(("nginx", f"http://127.0.0.1:{nginx_port}", PLACEHOLDER_AUTH))
        wait_ready(targets[-1][1] + "/api/v5/public/time")
    signvault, base = start_signvault(stack, workdir, exchange, log_level)
    targets.append(("signvault", f"{base}/proxy/okx", {**PLACEHOLDER_AUTH, "X-Signvault-Token": enrol(base)}))
    for _, url, headers in targets:  # warm: caches loaded, clocks synced, upstream connections open
        wrk(url + "/api/v5/account/balance", 64, 1, headers=headers)
    return Stack(signvault, base, exchange, targets)


def start_busy_polling(stack: ExitStack, workdir: Path, exchange: str,
                       log_level: str) -> tuple[str, dict[str, str]]:
    """Another signvault worker, with SIGNVAULT_BUSY_POLL on, enrolled and warmed: its proxy URL and headers.
    It keeps its core busy, so it runs only while its own rows are measured."""
    workdir.mkdir()
    _, base = start_signvault(stack, workdir, exchange, log_level, {"SIGNVAULT_BUSY_POLL": "true"})
    url, headers = f"{base}/proxy/okx", {**PLACEHOLDER_AUTH, "X-Signvault-Token": enrol(base)}
    wrk(url + "/api/v5/account/balance", 64, 1, headers=headers)
    return url, headers


def enrol(base: str) -> str:
    """One OKX credential with a limit high enough to measure speed, not pacing; returns a client token."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=base, headers=admin, timeout=30) as client:
        credential = client.post("/admin/credentials", json={
            "exchange": "okx", "label": "bench", "api_key": "BENCHKEY0000001", "api_secret": "bench-secret",
            "passphrase": "bench-pass", "rate_limit": "1000000/second"}).json()
        created = client.post("/admin/clients", json={"name": "bench", "credentials": [credential["id"]],
                                                      "permissions": ["read", "trade"]})
        return str(created.json()["token"])


def wrk(url: str, concurrency: int, seconds: float, method: str = "GET", body: str = "",
        headers: dict[str, str] | None = None, paced_rps: float = 0) -> Result:
    """Closed loop (each connection sends as soon as it has its answer), or, with `paced_rps`, each
    connection waits a random pause (mean concurrency/paced_rps) first: a fixed offered load."""
    lines = [f'wrk.method = "{method}"'] + ([f"wrk.body = {json.dumps(body)}"] if body else [])
    sent = {**HTTP_CLIENT_HEADERS, **(headers or {})}
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in sent.items()]
    if paced_rps:
        mean_ms = 1000 * concurrency / paced_rps
        lines.append(f"function delay() return math.random(0, {round(2 * mean_ms)}) end")
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write("\n".join(lines) + "\n")
        script.flush()
        out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency",
                              "-s", script.name, url], capture_output=True, text=True, check=True,
                             preexec_fn=_on(CORES.load)).stdout

    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Result("", method, concurrency, rps, latency("50"), latency("90"), latency("99"),
                  int(errors.group(1)) if errors else 0)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory now, or at its highest so far (VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def seed_credentials(workdir: Path, count: int) -> None:
    """Store `count` extra sealed credentials straight through the app's own storage code."""
    sys.path.insert(0, str(ROOT))
    from app.credentials.models import Credential, CredentialVersion
    from app.db import create_engine, create_sessionmaker
    from app.migrate import upgrade_to_head
    from app.vault import envelope
    from app.vault.keyring import parse_key
    from app.vault.service import SecretMaterial

    async def run() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{workdir / 'signvault.db'}")
        await upgrade_to_head(engine)
        master = parse_key(MASTER_KEY, "bench")
        sessionmaker = create_sessionmaker(engine)
        for start in range(0, count, 5000):
            async with sessionmaker() as session, session.begin():
                for i in range(start, min(count, start + 5000)):
                    cid = str(uuid.uuid4())
                    sealed = envelope.seal(master, SecretMaterial(f"KEY{i:09d}", f"secret-{i}", "p").to_bytes(), cid, 1)
                    session.add(Credential(id=cid, exchange="okx", label=f"seed-{i}", environment="live",
                                           permissions=["read"], rate_limit=None, enabled=True, active_version=1,
                                           key_type="hmac", api_key_hint="KEY0…0000"))
                    session.add(CredentialVersion(credential_id=cid, version=1, key_type="hmac",
                                                  api_key_hint="KEY0…0000", ciphertext=sealed.ciphertext,
                                                  wrapped_key=sealed.wrapped_key, master_key_id=sealed.master_key_id))
        await engine.dispose()

    asyncio.run(run())


def table(rows: list[Result]) -> str:
    """Rows with each one's latency added over the direct row of the same request, connections and load."""
    direct = {(r.method, r.concurrency, r.offered): r for r in rows if r.target == "direct"}
    offered = any(r.offered for r in rows)
    lines = ["| target | request | conc. |" + (" offered/s |" if offered else "") +
             " req/s | p50 ms | p90 ms | p99 ms | added p50 ms | added p99 ms | non-2xx |",
             "|---|---|---:|" + ("---:|" if offered else "") + "---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        base = direct.get((r.method, r.concurrency, r.offered))
        added = (f"{r.p50 - base.p50:.3f}", f"{r.p99 - base.p99:.3f}") if base and r.target != "direct" else ("", "")
        load = f" {r.offered:,.0f} |" if offered else ""
        lines.append(f"| {r.target} | {r.method} | {r.concurrency} |{load} {r.rps:,.0f} | {r.p50:.3f} | "
                     f"{r.p90:.3f} | {r.p99:.3f} | {added[0]} | {added[1]} | {r.errors} |")
    return "\n".join(lines)


def measured(target: str, result: Result, offered: float = 0) -> Result:
    result.target, result.offered = target, offered
    return result


def private(target: str, url: str, headers: dict[str, str], method: str, path: str, body: str,
            concurrency: int, seconds: float) -> Result:
    """One closed-loop row of a private request (see PRIVATE) through `url`."""
    extra = {"Content-Type": "application/json"} if body else {}
    return measured(target, wrk(url + path, concurrency, seconds, method, body, {**headers, **extra}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per measurement (default 10)")
    parser.add_argument("--concurrency", default="1,16,64,256", help="comma-separated (default 1,16,64,256)")
    parser.add_argument("--latency-ms", type=float, default=0, help="fixed delay the fake exchange adds")
    parser.add_argument("--credentials", default="10,10000,100000", help="stored-credential counts to compare")
    parser.add_argument("--log-level", default="WARNING",
                        help="signvault's log level (default WARNING; INFO adds a JSON access line per request)")
    parser.add_argument("--paced-rps", default="1000,2000,4000",
                        help="offered loads for the fixed-load rows, comma-separated (default 1000,2000,4000)")
    parser.add_argument("--real-latency-ms", type=float, default=20,
                        help="the exchange's round trip for the 64-client rows (default 20)")
    parser.add_argument("--real-jitter-ms", type=float, default=10, help="± spread around it (default 10)")
    parser.add_argument("--no-pin", action="store_true", help="share every core (default: the proxy gets one)")
    parser.add_argument("--quick", action="store_true", help="3 s measurements, fewer levels")
    parser.add_argument("--plain-exchange", action="store_true",
                        help="reach the fake exchange over plain HTTP (default: TLS, as real exchanges)")
    args = parser.parse_args(argv)
    if not args.no_pin:
        CORES.pin()
    certificates = tempfile.TemporaryDirectory(prefix="signvault-bench-tls-")
    if not args.plain_exchange:
        EXCHANGE.use_tls(Path(certificates.name))
    if shutil.which("wrk") is None:
        print("bench: wrk is needed (Debian/Ubuntu: apt-get install wrk)", file=sys.stderr)
        return 2
    seconds = 3.0 if args.quick else args.seconds
    levels = [1, 64] if args.quick else [int(c) for c in args.concurrency.split(",")]
    counts = [10, 10000] if args.quick else [int(c) for c in args.credentials.split(",")]
    loads = [float(r) for r in args.paced_rps.split(",")][:1 if args.quick else None]
    report = [f"# signvault benchmark\n\n{os.cpu_count()} cores, loopback, wrk 1 thread, {seconds:g} s per row, "
              f"fake exchange latency {args.latency_ms:g} ms, one signvault worker on SQLite, "
              f"log level {args.log_level}, {CORES.describe()}, the fake exchange reached over "
              f"{'plain HTTP' if args.plain_exchange else 'TLS'}, {interpreter()}, {idle_polling()}. "
              "Requests carry a bot's headers (ccxt on requests, with placeholder OKX credentials); answers carry "
              "an exchange's (some twenty, BENCH_EXCHANGE_HEADERS=few for two).\n"]
    with tempfile.TemporaryDirectory(prefix="signvault-bench-") as tmp, ExitStack() as stack:
        bench = start_stack(stack, Path(tmp) / "main", args.log_level, args.latency_ms)
        signvault, base, targets = bench.signvault, bench.base, bench.targets
        bot = targets[-1][2]
        rows: list[Result] = []
        for method, path, body in PRIVATE:
            for concurrency in levels:
                for name, url, headers in targets:
                    rows.append(private(name, url, headers, method, path, body, concurrency, seconds))
        report.append("## Proxied private requests\n\nClosed loop: each connection sends its next request as "
                      "soon as it has an answer, so from 16 connections on, signvault runs flat out and its "
                      "latency is mostly queueing.\n\n" + table(rows))
        paced: list[Result] = []
        cpu_lines = []
        for rate in loads:
            for name, url, headers in targets:
                before = cpu_s(signvault.pid)
                result = measured(name, wrk(url + "/api/v5/account/balance", 64, seconds, headers=headers,
                                            paced_rps=rate), rate)
                paced.append(result)
                if name == "signvault":
                    per_request = (cpu_s(signvault.pid) - before) / max(1.0, result.rps * seconds)
                    busy = per_request * result.rps
                    cpu_lines.append(f"{per_request * 1e6:,.0f} µs at {rate:,.0f}/s (busy {busy:.0%})")
        with ExitStack() as spinning:
            url, headers = start_busy_polling(spinning, Path(tmp) / "busy-poll", bench.exchange, args.log_level)
            for rate in loads:
                paced.append(measured(BUSY_POLL, wrk(url + "/api/v5/account/balance", 64, seconds, headers=headers,
                                                     paced_rps=rate), rate))
        report.append("## At fixed loads\n\n64 connections offering a fixed number of GET/s in all (each "
                      "waits a random pause, then sends): the added latency of one request when signvault is "
                      "busy but not saturated.\n\n" + table(paced) + "\n\n"
                      f"signvault's CPU per request: {'; '.join(cpu_lines)}. Requests arriving at random "
                      "queue behind each other in proportion to how busy the worker is. " + BUSY_POLL_NOTE)
        sign = wrk(f"{base}/sign", 64, seconds, "POST", SIGN_BODY,
                   {"X-Signvault-Token": bot["X-Signvault-Token"], "Content-Type": "application/json"})
        report.append(f"## /sign\n\n64 connections: **{sign.rps:,.0f} req/s**, p50 {sign.p50:.3f} ms, "
                      f"p99 {sign.p99:.3f} ms, non-2xx {sign.errors}.")
        report.append(f"## Memory\n\nsignvault worker resident after the runs: **{rss_mb(signvault.pid):.0f} MB** "
                      f"(at its highest {rss_mb(signvault.pid, 'VmHWM'):.0f} MB).")
        stack.close()

    with tempfile.TemporaryDirectory(prefix="signvault-bench-") as tmp, ExitStack() as stack:
        real = start_stack(stack, Path(tmp), args.log_level, args.real_latency_ms, args.real_jitter_ms)
        rows = [private(name, url, headers, *request, 64, seconds)
                for request in PRIVATE for name, url, headers in real.targets]
        url, headers = start_busy_polling(stack, Path(tmp) / "busy-poll", real.exchange, args.log_level)
        rows += [private(BUSY_POLL, url, headers, *request, 64, seconds) for request in PRIVATE]
        low, high = args.real_latency_ms - args.real_jitter_ms, args.real_latency_ms + args.real_jitter_ms
        report.append(f"## 64 clients, exchange round trip {args.real_latency_ms:g} ± {args.real_jitter_ms:g} ms\n\n"
                      f"Closed loop again, against a fake exchange that answers in {low:g} to {high:g} ms, "
                      "evenly spread: 64 bots each waiting for their answer before sending again, as they do "
                      "against a real exchange. " + BUSY_POLL_NOTE + "\n\n" + table(rows))

    scaling = ["## Stored credentials\n", "| credentials | req/s (GET, 64 conn.) | p50 ms | p99 ms | RSS MB |",
               "|---:|---:|---:|---:|---:|"]
    for count in counts:
        with tempfile.TemporaryDirectory(prefix="signvault-bench-") as tmp, ExitStack() as stack:
            seed_credentials(Path(tmp), count)
            seeded = start_stack(stack, Path(tmp), args.log_level, args.latency_ms)
            _, url, headers = seeded.targets[-1]
            result = wrk(url + "/api/v5/account/balance", 64, seconds, headers=headers)
            scaling.append(f"| {count:,} | {result.rps:,.0f} | {result.p50:.3f} | {result.p99:.3f} | "
                           f"{rss_mb(seeded.signvault.pid):.0f} |")
    report.append("\n".join(scaling))
    print("\n\n".join(report))
    certificates.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
