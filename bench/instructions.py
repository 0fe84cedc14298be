"""Instructions per request: `python -m bench.instructions` (needs valgrind).

Requests per second and latency drift 15-25% between runs on a shared machine, and by 2-3.5 times
between machines (bench/results/). The number of CPU instructions a request takes does not: under
valgrind's callgrind it is the same for the same code and inputs whatever else the machine is doing.
So a change that claims to make signvault cheaper can be checked here, on any machine, in a minute
or two. Not to the instruction, though: timers (the audit writer's 0.2 s batches, cache refreshes,
clock syncs) fire by the wall clock, so how many requests share their cost varies. With 400
requests of each kind, two runs of the same code gave GET 821k and 794k on the event loop; with 800,
805k and 806k (POST 855k and 851k, /sign 693k and 691k). The default is 1,000.

One signvault worker runs under callgrind, with counting off until its caches are warm; then one
keep-alive connection sends `--requests` of each kind one after another, and the count is read per
thread: the event loop's, and the others' (the audit writer, the idempotency store). Against wrk at 64
connections, the event loop's count per proxied GET was ~4% lower (787k against 819k): each loop pass
served several requests, and each audit batch more rows. Audit rows are the one cost this count
overstates: under valgrind one connection sends a few dozen requests a second, so the writer's
per-batch work is shared by few rows. Turning the rows off took 140k of a GET's 857k instructions
here (loop and thread), against 93k of 827k with wrk keeping the worker saturated.

The time an instruction takes is another matter: on the bench's 2-core VMs a request cost about
twice the CPU time at 1,000 req/s that it cost saturated, for the same count (caches and a core
woken from idle), so compare these numbers with each other, not with microseconds. Fewer
instructions are not always less time: compiled with Cython, the request path took 11% fewer and
was slower at low load (bench/HISTORY.md). `--cache-sim` also counts, in callgrind's simulation of
this CPU's caches, how often a request's code and data missed the first-level caches (a GET: ~13k
instruction misses interpreted, ~17k compiled): a change that adds code can be caught there.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.run import (
    EXCHANGE,
    HTTP_CLIENT_HEADERS,
    PLACEHOLDER_AUTH,
    PRIVATE,
    ROOT,
    SIGN_BODY,
    SIGNVAULT,
    enrol,
    fake_exchange,
    free_port,
    process,
    signvault_env,
    wait_ready,
)

WARM = 300  # requests of each kind before counting: caches loaded, clocks synced, connections open
FLUSH_S = 2.0  # the audit writer gathers rows for 0.2 s, then writes them in its own thread
MISSES = ("I1mr", "D1mr", "D1mw")  # callgrind's first-level misses: instruction reads, data reads, data writes


def requests(token: str) -> dict[str, bytes]:
    """Each kind's whole HTTP/1.1 request, as a bot would send it: its HTTP library's headers, and
    to the proxy the placeholder credentials it signs with."""

    def request(method: str, target: str, body: str, headers: dict[str, str]) -> bytes:
        head = "".join(f"{name}: {value}\r\n" for name, value in {
            "Host": "signvault", **HTTP_CLIENT_HEADERS, **headers, "X-Signvault-Token": token}.items())
        framing = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
        return f"{method} {target} HTTP/1.1\r\n{head}{framing}\r\n{body}".encode()

    proxied = {f"proxied {method}": request(method, f"/proxy/okx{path}", body, PLACEHOLDER_AUTH)
               for method, path, body in PRIVATE}
    return {**proxied, "/sign": request("POST", "/sign", SIGN_BODY, {})}


def exchange(connection: socket.socket, request: bytes) -> None:
    """Send one request and read its whole answer (Content-Length framed); it must be a 200."""
    connection.sendall(request)
    data = b""
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            raise SystemExit("bench: signvault closed the connection")
        data += chunk
        end = data.find(b"\r\n\r\n")
        if end < 0:
            continue
        length = re.search(rb"(?im)^content-length:\s*(\d+)", data[:end])
        if length and len(data) >= end + 4 + int(length.group(1)):
            status = data.partition(b"\r\n")[0].decode("latin-1")
            if not status.startswith("HTTP/1.1 200"):
                raise SystemExit(f"bench: signvault answered {status}")
            return


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


def counted(out: Path, pid: int, dump: int) -> dict[int, dict[str, int]]:
    """Callgrind's events per thread (Ir, the instructions, and with --cache-sim the misses) in the
    `dump`-th dump of `pid`; thread 1 runs the event loop."""
    threads = {}
    for path in out.glob(f"cg.{pid}.{dump}-*"):
        text = path.read_text(errors="replace")
        events = re.search(r"^events: (.+)$", text, re.M)
        total = re.search(r"^(?:summary|totals): (.+)$", text, re.M)
        if events and total:
            threads[int(path.name.rpartition("-")[2])] = dict(zip(events.group(1).split(),
                                                                   map(int, total.group(1).split()), strict=False))
    return threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="counted requests of each kind (default 1000)")
    parser.add_argument("--plain-exchange", action="store_true",
                        help="reach the fake exchange over plain HTTP (default: TLS, as real exchanges)")
    parser.add_argument("--cache-sim", action="store_true",
                        help="also count first-level cache misses on the event loop (simulated; about twice as slow)")
    args = parser.parse_args(argv)
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        raise SystemExit("bench: needs valgrind (Debian/Ubuntu: apt-get install valgrind)")
    rows = []
    with ExitStack() as stack:
        out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="signvault-instructions-")))
        workdir = out / "data"
        workdir.mkdir()
        if not args.plain_exchange:
            EXCHANGE.use_tls(out)
        cmd, env, origin = fake_exchange(0)
        stack.enter_context(process(cmd, env))
        wait_ready(f"{origin}/api/v5/public/time")
        port = free_port()
        signvault = stack.enter_context(process(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
             *(["--cache-sim=yes"] if args.cache_sim else []),
             f"--callgrind-out-file={out}/cg.%p", SIGNVAULT, "serve", "--port", str(port)],
            {**signvault_env(workdir, origin, port), "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}))
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/healthz", timeout=300)  # Python starts some 50 times slower under valgrind
        connection = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
        for dump, (kind, request) in enumerate(requests(enrol(base)).items(), start=1):
            for _ in range(WARM):
                exchange(connection, request)
            time.sleep(FLUSH_S)
            callgrind_control("--zero", str(signvault.pid))
            callgrind_control("--instr=on", str(signvault.pid))
            for _ in range(args.requests):
                exchange(connection, request)
            time.sleep(FLUSH_S)
            callgrind_control("--dump", str(signvault.pid))
            callgrind_control("--instr=off", str(signvault.pid))
            threads = counted(out, signvault.pid, dump)
            loop = threads.get(1, {})
            others = sum(events.get("Ir", 0) for thread, events in threads.items() if thread != 1)
            misses = [loop.get(name, 0) / args.requests for name in MISSES] if args.cache_sim else []
            rows.append(f"| {kind} | {loop.get('Ir', 0) / args.requests:,.0f} | {others / args.requests:,.0f} | "
                        f"{(loop.get('Ir', 0) + others) / args.requests:,.0f} |"
                        + "".join(f" {n:,.0f} |" for n in misses))
    columns, rule = "| request | event loop | other threads | total |", "|---|---:|---:|---:|"
    if args.cache_sim:  # the event loop's, simulated
        columns += " L1i misses | L1d read misses | L1d write misses |"
        rule += "---:|" * len(MISSES)
    print(f"# Instructions per request\n\nOne signvault worker under callgrind, SQLite, {args.requests} requests "
          "of each kind on one keep-alive connection, counted after warming up; the fake exchange reached over "
          f"{'plain HTTP' if args.plain_exchange else 'TLS'}"
          f"{'; cache misses on the event loop, in callgrind simulation' if args.cache_sim else ''}.\n\n"
          f"{columns}\n{rule}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
