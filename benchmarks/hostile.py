"""The hostile-server scenarios of the bounds work, measured: exit code, wall time and peak RSS of each.

Run ``python benchmarks/hostile.py`` (``--help`` for options; ``--smoke`` runs the fast scenarios only and
checks each ends with its documented exit code). Each scenario runs ``ucloud-images`` (or a small
Python program) in a fresh child process against the hostile loopback server of ``tests/api/hostile_server.py``
or the emulator, and is killed after ``--limit`` seconds. ``--source DIR`` runs the package found in DIR (for
example a ``git archive`` of an older commit) instead of the installed one, so two versions can be compared
with the same script. Prints a markdown table on stdout; the first line of each run's stderr follows it.

Peak RSS is the child's own ``VmHWM`` (reported at exit, and sampled every 50 ms for a run that gets killed;
``ru_maxrss`` would include this process's RSS at the fork); for the emulator scenarios it is the emulator
process's ``VmHWM``. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: tests.api.hostile_server

from tests.api.hostile_server import HostileServer

# Runs the package from $HOSTILE_SOURCE when set, even over an editable install (whose finder would win).
# Also reports the process's own peak RSS (VmHWM of its own memory map) at exit: ru_maxrss of a child would
# include the RSS of this process at the fork.
PRELUDE = (
    "import atexit, os, sys\n"
    "if os.environ.get('HOSTILE_SOURCE'):\n"
    "    sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith('__editable__')]\n"
    "    sys.path.insert(0, os.environ['HOSTILE_SOURCE'])\n"
    "def _report_rss():\n"
    "    with open('/proc/self/status') as s, open(os.environ['HOSTILE_RSS_FILE'], 'w') as f:\n"
    "        f.write(next(line for line in s if line.startswith('VmHWM')).split()[1])\n"
    "atexit.register(_report_rss)\n"
)
CLI = PRELUDE + "from pulumi_ucloud_images._cli import main\nsys.exit(main())\n"
KEYS = ["--region", "cn-bj2", "--public-key", "pk-hostile", "--private-key", "sk-hostile-never-shown"]


@dataclass
class Outcome:
    name: str
    code: int | str
    seconds: float
    rss_mib: float
    note: str
    stderr: str


class Runner:
    def __init__(self, source: str | None, limit: float) -> None:
        self.source, self.limit = source, limit
        self.home = tempfile.mkdtemp(prefix="hostile-home-")

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("UCLOUD_")}
        env["HOME"] = self.home
        if self.source:
            env["HOSTILE_SOURCE"] = self.source
        return env

    def run(self, argv: Sequence[str], *, interrupt_after: float | None = None,
            limit: float | None = None) -> tuple[int | str, float, float, str, float | None]:
        """Exit code (or 'killed'), seconds, peak RSS in MiB, stderr, seconds from SIGINT to exit."""
        limit = limit or self.limit
        with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss_file:
            env = {**self.env(), "HOSTILE_RSS_FILE": rss_file.name}
            started = time.monotonic()
            child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
            sampled = [0]
            killed = threading.Event()
            finished = threading.Event()
            interrupted: list[float] = []

            def watchdog() -> None:  # never reaps the child: os.wait4 below does, to read its rusage
                if interrupt_after is not None and not finished.wait(interrupt_after):
                    interrupted.append(time.monotonic())
                    os.kill(child.pid, signal.SIGINT)
                while not finished.wait(0.05):  # samples VmHWM too, for a run that gets killed
                    with contextlib.suppress(OSError, ValueError):
                        sampled[0] = max(sampled[0], proc_status(child.pid, "VmHWM"))
                    if time.monotonic() > started + limit:
                        killed.set()
                        os.kill(child.pid, signal.SIGKILL)
                        return

            thread = threading.Thread(target=watchdog, daemon=True)
            thread.start()
            _, status, _ = os.wait4(child.pid, 0)
            seconds = time.monotonic() - started
            finished.set()
            child.returncode = os.waitstatus_to_exitcode(status)
            thread.join()
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace")
            reported = rss_file.read().strip()
        peak_kib = max(sampled[0], int(reported) if reported.isdigit() else 0)
        code: int | str = "killed" if killed.is_set() else child.returncode
        after_sigint = (started + seconds - interrupted[0]) if interrupted else None
        return code, seconds, peak_kib / 1024, stderr, after_sigint

    def cli(self, *args: str, **kwargs: float) -> tuple[int | str, float, float, str, float | None]:
        return self.run([sys.executable, "-c", CLI, *args], **kwargs)

    def python(self, code: str, **kwargs: float) -> tuple[int | str, float, float, str, float | None]:
        return self.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], **kwargs)


def first_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    if not lines:
        return ""
    if any(line.startswith("Traceback") for line in lines):
        return "traceback: " + lines[-1][:150]
    return lines[0][:220]


Scenario = Callable[[Runner, HostileServer, HostileServer], Outcome]
SCENARIOS: list[tuple[str, Scenario]] = []


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def register(function: Scenario) -> Scenario:
        SCENARIOS.append((name, function))
        return function

    return register


def find(runner: Runner, name: str, url: str, *extra: str, note: str = "", **kwargs: float) -> Outcome:
    """``ucloud-images find --most-recent`` (the hostile pages list several images) against ``url``."""
    code, seconds, rss, stderr, _ = runner.cli("find", *KEYS, "--most-recent", "--base-url", url, *extra,
                                               **kwargs)
    return Outcome(name, code, seconds, rss, note, first_line(stderr))


for mode in ("trickle-body", "trickle-headers", "stall", "stall-body"):
    def _time(runner: Runner, server: HostileServer, other: HostileServer, mode: str = mode) -> Outcome:
        return find(runner, f"{mode}, --timeout 2", server.url(mode, interval=1), "--timeout", "2")

    scenario(f"{mode}")(_time)

for code in (301, 302, 303, 307, 308):
    def _redirect(runner: Runner, server: HostileServer, other: HostileServer, code: int = code) -> Outcome:
        before = len(other.captured)
        outcome = find(runner, f"redirect {code} to another origin", server.url(
            "redirect", code=code, target=other.url("capture")))
        reached = other.captured[before:]
        signed = any("Signature=" in request.body.decode("latin-1") for request in reached)
        outcome.note = f"{len(reached)} request(s) reached the other origin"
        outcome.note += ", signed form re-POSTed" if signed else ""
        return outcome

    scenario(f"redirect-{code}")(_redirect)


@scenario("redirect-loop")
def _redirect_loop(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    chain = server.url("redirect", code=307, target=server.url("stall"))
    return find(runner, "redirect 307 to a stalling URL, --timeout 2", chain, "--timeout", "2")


for size in (1024, 4096):
    def _gzip(runner: Runner, server: HostileServer, other: HostileServer, size: int = size) -> Outcome:
        return find(runner, f"gzip bomb: ~{size // 1024} MiB inflating to {size // 1024} GiB",
                    server.url("gzip", size=size))

    scenario(f"gzip-{size}")(_gzip)


@scenario("huge")
def _huge(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    return find(runner, "200 MB body", server.url("huge", size=200))


@scenario("huge-chunked")
def _huge_chunked(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    return find(runner, "200 MB chunked body (no Content-Length)", server.url("huge", size=200, chunked=1))


@scenario("junk")
def _junk(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    return find(runner, "30 MiB of [{},{},...] in a page", server.url("junk", size=30))


@scenario("fake-total")
def _fake_total(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    before = server.requests()
    outcome = find(runner, "fake TotalCount 9,999,999, full pages", server.url("fake-total"))
    outcome.note = f"{server.requests() - before} requests"
    return outcome


@scenario("fake-total-dup")
def _fake_total_dup(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    before = server.requests()
    outcome = find(runner, "fake TotalCount, one new image per page", server.url("fake-total", dup=1))
    outcome.note = f"{server.requests() - before} requests"
    return outcome


@scenario("regex-backtracking")
def _regex_backtracking(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    return find(runner, "name_regex (a+)+$ on 'a'*34 + '!'", server.url("ok", images=1, name="a" * 34 + "!"),
                "--name-regex", "(a+)+$")


@scenario("regex-alternation")
def _regex_alternation(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    return find(runner, "name_regex (a|aa)+$ on 'a'*40 + '!'", server.url("ok", images=1, name="a" * 40 + "!"),
                "--name-regex", "(a|aa)+$")


for label, pattern in (("regex-overflow", "x{99999999999}"), ("regex-nested", "(" * 500 + "a" + ")" * 500)):
    def _regex(runner: Runner, server: HostileServer, other: HostileServer, pattern: str = pattern,
               label: str = label) -> Outcome:
        return find(runner, f"name_regex {pattern[:16]}{'...' if len(pattern) > 16 else ''}", server.url("ok"),
                    "--name-regex", pattern)

    scenario(label)(_regex)


@scenario("ctrl-c")
def _ctrl_c(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    code, seconds, rss, stderr, after = runner.cli("find", *KEYS, "--base-url", server.url("stall"),
                                                   interrupt_after=2.0)
    note = f"exit {after:.2f} s after SIGINT" if after is not None else "exited before SIGINT"
    return Outcome("Ctrl+C during a hung page", code, seconds, rss, note, first_line(stderr))


@scenario("ctrl-c-pool")
def _ctrl_c_pool(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    url = server.url("stall-later", total=3000, key=time.monotonic())
    code, seconds, rss, stderr, after = runner.cli("find", *KEYS, "--base-url", url, interrupt_after=2.0)
    note = f"exit {after:.2f} s after SIGINT" if after is not None else "exited before SIGINT"
    return Outcome("Ctrl+C while later pages hang in the pool", code, seconds, rss, note, first_line(stderr))


@scenario("retry-after")
def _retry_after(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    url = server.url("status", code=429, times=2, retry_after=2, key=time.monotonic())
    outcome = find(runner, "HTTP 429 twice with Retry-After: 2", url)
    outcome.note = "honoured" if outcome.code == 0 and outcome.seconds >= 4 else "not honoured (retried sooner)"
    return outcome


@scenario("rate-limit-burst")
def _burst(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    url = server.url("retcode", code=153, seconds=8, key=time.monotonic())
    before = server.requests()
    outcome = find(runner, "RetCode 153 for 8 s", url)
    outcome.note = f"{server.requests() - before} requests"
    return outcome


@scenario("153x3-502x2")
def _sequence(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    url = server.url("sequence", seq="153,153,153,502,502", key=time.monotonic())
    return find(runner, "RetCode 153 x3 then HTTP 502 x2 on the first page", url)


@scenario("153-constant-200-lookups")
def _constant(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    url = server.url("retcode", code=153, key=time.monotonic())
    before = server.requests()
    code, seconds, rss, stderr, _ = runner.python(f"""
        import threading
        from pydantic import SecretStr
        from pulumi_ucloud_images import Client, Settings, UCloudImagesError, lookup_images
        client = Client(Settings(public_key="pk", private_key=SecretStr("sk"), region="cn-bj2",
                                 base_url={url!r}))
        failures = []
        def one(index):
            try:
                lookup_images(client=client, zone=f"cn-bj2-{{index:03d}}")
            except UCloudImagesError as error:
                failures.append(error)
        threads = [threading.Thread(target=one, args=(index,)) for index in range(200)]
        for thread in threads: thread.start()
        for thread in threads: thread.join()
        print(str(failures[0])[:200] if failures else "no failure", file=__import__("sys").stderr)
    """, limit=max(runner.limit, 90))
    return Outcome("200 lookups under constant RetCode 153", code, seconds, rss,
                   f"{server.requests() - before} requests", first_line(stderr))


@scenario("invalid-port")
def _invalid_port(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    return find(runner, "base URL http://127.0.0.1:99999", "http://127.0.0.1:99999")


@scenario("tls-to-plain")
def _tls(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    before = server.requests()
    outcome = find(runner, "https:// to a plain-HTTP port", f"https://127.0.0.1:{server.port}/ok")
    outcome.note = f"{server.requests() - before} plain requests seen (TLS hellos are not HTTP)"
    return outcome


@scenario("invalid-utf8")
def _utf8(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    url = server.url("utf8", key=time.monotonic())
    outcome = find(runner, "invalid UTF-8 in the body", url)
    outcome.note = f"{server.requests('utf8')} request(s) so far to utf8 mode"
    return outcome


@scenario("nested-json")
def _nested(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    return find(runner, "100,000 nested JSON arrays", server.url("nested", key=time.monotonic()))


@scenario("html-404")
def _html(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    url = server.url("html", code=404, key=time.monotonic())
    before = server.requests()
    outcome = find(runner, "HTTP 404 HTML page", url)
    outcome.note = f"{server.requests() - before} request(s)"
    return outcome


# -- the emulator, as a server users run -------------------------------------------------------------------


@contextlib.contextmanager
def emulator_process(runner: Runner, *extra: str) -> Iterator[tuple[subprocess.Popen[bytes], str, list[str]]]:
    child = subprocess.Popen([sys.executable, "-c", CLI, "emulator", "--port", "0", *extra], env=runner.env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    stderr = child.stderr
    errors: list[str] = []
    threading.Thread(target=lambda: errors.extend(line.decode("utf-8", "replace") for line in stderr),
                     daemon=True).start()
    try:
        line = child.stdout.readline().decode()
        match = re.search(r"http://([\d.]+|\[[^\]]+\]):(\d+)", line)
        assert match, f"the emulator did not start: {line!r} {errors!r}"
        yield child, f"127.0.0.1:{match.group(2)}", errors
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def raw_request(address: str, head: bytes, body_size: int = 0, body: bytes = b"", timeout: float = 60) -> bytes:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        try:
            sock.sendall(head)
            if body:
                sock.sendall(body)
            chunk = b" " * (1024 * 1024)
            sent = 0
            while sent < body_size:
                piece = chunk[: min(len(chunk), body_size - sent)]
                sock.sendall(piece)
                sent += len(piece)
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            return f"<send failed: {exc.strerror or exc}>".encode()
        answer = b""
        with contextlib.suppress(OSError):
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        return answer or b"<connection closed without an answer>"


def emulator_outcome(name: str, child: subprocess.Popen[bytes], answer: bytes, started: float,
                     errors: list[str], note: str = "") -> Outcome:
    time.sleep(0.3)
    rss = proc_status(child.pid, "VmHWM") / 1024
    first = answer.split(b"\r\n", 1)[0].decode("latin-1")
    body = answer.split(b"\r\n\r\n", 1)[-1][:120].decode("utf-8", "replace")
    alive = child.poll() is None
    return Outcome(name, "serving" if alive else f"died ({child.returncode})", time.monotonic() - started, rss,
                   note or f"{first} {body}", first_line("".join(errors)))


def _post_head(length: int | str, content_type: str = "application/x-www-form-urlencoded") -> bytes:
    return (f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n"
            "Connection: close\r\n\r\n").encode()


@scenario("emulator-300mb-body")
def _emu_body(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    with emulator_process(runner) as (child, address, errors):
        started = time.monotonic()
        size = 300 * 1024 * 1024
        answer = raw_request(address, _post_head(size), body_size=size)
        return emulator_outcome("emulator: 300 MB request body", child, answer, started, errors)


@scenario("emulator-content-length-1e12")
def _emu_length(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    with emulator_process(runner) as (child, address, errors):
        started = time.monotonic()
        answer = raw_request(address, _post_head(10**12), body=b"Action=DescribeImage", timeout=15)
        return emulator_outcome("emulator: Content-Length 10**12", child, answer, started, errors)


@scenario("emulator-nested-json")
def _emu_nested(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    with emulator_process(runner) as (child, address, errors):
        started = time.monotonic()
        body = b"[" * 100_000 + b"]" * 100_000
        answer = raw_request(address, _post_head(len(body), "application/json"), body=body)
        return emulator_outcome("emulator: 100,000-deep JSON body", child, answer, started, errors)


@scenario("emulator-threads")
def _emu_threads(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    with emulator_process(runner) as (child, address, errors):
        started = time.monotonic()
        host, port = address.rsplit(":", 1)
        idle = []
        waited = 0
        for _ in range(300):
            sock = socket.socket()
            sock.settimeout(2)
            try:
                sock.connect((host, int(port)))
            except OSError:  # the listen queue is full too: the connection waits (here: gives up)
                waited += 1
                sock.close()
                continue
            idle.append(sock)
        time.sleep(1.0)
        threads = proc_status(child.pid, "Threads")
        for sock in idle:
            sock.close()
        note = f"{threads} threads" + (f"; {waited} connects timed out with the listen queue full" if waited else "")
        return emulator_outcome("emulator: 300 idle connections", child, b"", started, errors, note=note)


@scenario("emulator-host-all")
def _emu_host(runner: Runner, server: HostileServer, other: HostileServer) -> Outcome:
    with emulator_process(runner, "--host", "") as (child, _address, errors):
        started = time.monotonic()
        time.sleep(0.5)
        warned = [line for line in errors if "warning" in line.lower()]
        return emulator_outcome("emulator --host ''", child, b"", started, errors,
                                note="warned" if warned else "no warning")


# The fast scenarios and how each must end (docs/bounds.md): what --smoke runs, in a few seconds.
SMOKE = {
    "redirect-302": 5, "redirect-307": 5, "gzip-1024": 5, "huge": 5, "huge-chunked": 5, "junk": 5, "fake-total": 5,
    "regex-overflow": 2, "invalid-port": 2, "tls-to-plain": 5, "invalid-utf8": 5, "nested-json": 5, "html-404": 5,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="Directory holding the pulumi_ucloud_images package to measure.")
    parser.add_argument("--limit", type=float, default=75.0, help="Kill a run after this many seconds.")
    parser.add_argument("--only", nargs="*", help="Scenario names to run (default: all).")
    parser.add_argument("--smoke", action="store_true",
                        help="only the fast scenarios (seconds); exit 1 unless each ends with its documented code")
    args = parser.parse_args()
    if args.smoke:
        args.only = list(SMOKE)
    runner = Runner(args.source, args.limit)
    outcomes = []
    with HostileServer(hold=args.limit + 30) as server, HostileServer(hold=args.limit + 30) as other:
        for name, function in SCENARIOS:
            if args.only and name not in args.only:
                continue
            outcome = function(runner, server, other)
            outcomes.append((name, outcome))
            print(f"{name}: {outcome.code} {outcome.seconds:.1f} s {outcome.rss_mib:.0f} MiB {outcome.note} "
                  f"| {outcome.stderr}", file=sys.stderr, flush=True)
    print("| scenario | exit | seconds | peak RSS (MiB) | note |")
    print("|---|---:|---:|---:|---|")
    for _, outcome in outcomes:
        print(f"| {outcome.name} | {outcome.code} | {outcome.seconds:.1f} | {outcome.rss_mib:.0f} | {outcome.note} |")
    print()
    for name, outcome in outcomes:
        print(f"- {name}: {outcome.stderr or '(no stderr)'}")
    if args.smoke:
        wrong = [f"{name} ended {outcome.code}, not {SMOKE[name]}" for name, outcome in outcomes
                 if outcome.code != SMOKE[name]]
        print("\n" + ("; ".join(wrong) if wrong else f"Smoke run: all {len(outcomes)} scenarios ended as documented."))
        return 1 if wrong else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
