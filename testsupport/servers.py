"""Private servers: a Redis and a PostgreSQL of one test's or benchmark's own.

The shared servers of `TEST_DATABASE_URL` / `TEST_REDIS_URL` are used by other people's test
suites and benchmarks at the same time. Bot processes keep fixed Redis keys (shard leases, the
identify queue, saved sessions, cluster membership) that two runs would fight over, so every
benchmark with bot processes starts a Redis of its own on a free loopback port. Whoever
restarts a server on purpose (the `bank` benchmark, the Redis outage tests) needs one of its
own: PostgreSQL is then `initdb` as the `postgres` user in a temporary directory, `fsync=off`.

Each is an async context manager: `async with PrivateRedis() as server:` starts it and
removes it on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self


class ServiceError(RuntimeError):
    """A private server could not be started."""


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateServer:
    """A server of this process's own: `start` it, `close` it (stop and remove its files)."""

    async def start(self) -> None:
        """Start it; returns once it answers."""
        raise NotImplementedError

    async def close(self) -> None:
        """Stop it and remove its directory."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class PrivateRedis(PrivateServer):
    """redis-server on a free loopback port, no persistence: a restart loses every key.

    With `tls`, it speaks only TLS (a self-signed certificate for 127.0.0.1, made with openssl;
    `url` is a rediss:// URL that trusts it).
    """

    def __init__(self, tls: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="private-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.certificate = os.path.join(self.workdir, "cert.pem") if tls else None

    @property
    def url(self) -> str:
        """Its redis:// URL (logical database 0: the server is ours alone), or rediss://."""
        if self.certificate is not None:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.certificate}"
        return f"redis://127.0.0.1:{self.port}/0"

    def _listen(self) -> list[str]:
        """redis-server's options for where it listens: a TLS port with its certificate."""
        if self.certificate is None:
            return ["--port", str(self.port)]
        key = os.path.join(self.workdir, "key.pem")
        if not os.path.exists(self.certificate):
            request = "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1"
            names, out = "subjectAltName=IP:127.0.0.1", self.certificate
            subprocess.run(
                ["openssl", *request.split(), "-addext", names, "-keyout", key, "-out", out],
                check=True,
                capture_output=True,
            )
        files = ["--tls-cert-file", self.certificate, "--tls-key-file", key]
        trusted = ["--tls-ca-cert-file", self.certificate, "--tls-auth-clients", "no"]
        return ["--port", "0", "--tls-port", str(self.port), *files, *trusted]

    def _answers(self) -> bool:
        """Whether it answers PING now (over TLS when it speaks TLS)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as raw:
                sock = raw
                if self.certificate is not None:
                    trust = ssl.create_default_context(cafile=self.certificate)
                    sock = trust.wrap_socket(raw, server_hostname="127.0.0.1")
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                *self._listen(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._answers():
                return
            time.sleep(0.02)  # polling a child's port while it starts
        raise ServiceError("redis-server did not answer PING within 10 s")

    def _stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    async def start(self) -> None:
        """Start it and wait until it answers."""
        await asyncio.to_thread(self._start)

    async def stop(self) -> None:
        """Stop it (SIGTERM)."""
        await asyncio.to_thread(self._stop)

    async def restart(self) -> float:
        """Stop and start it on the same port; returns the seconds it was away."""
        started = time.perf_counter()
        await self.stop()
        await self.start()
        return time.perf_counter() - started

    async def close(self) -> None:
        """Stop it and remove its directory."""
        await self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    override = os.environ.get("PG_BIN")
    if override:
        return Path(override)
    if not found:
        raise ServiceError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1])


class PrivatePostgres(PrivateServer):
    """A throwaway PostgreSQL cluster: initdb in a temporary directory, fsync off, free port.

    initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user, which
    must own the data directory.
    """

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="private-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"

    @property
    def url(self) -> str:
        """The server URL (database `postgres`), as TEST_DATABASE_URL would be."""
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _as_pg(self, *argv: str) -> subprocess.CompletedProcess[str]:
        command = [*argv]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise ServiceError(f"{' '.join(argv[:2])} failed: {done.stderr.strip()[-2000:]}")
        return done

    def _init(self) -> None:
        os.chmod(self.root, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._as_pg(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        )

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            " -c shared_buffers=64MB"
        )
        self._as_pg(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            *extra,
            action,
        )

    async def start(self) -> None:
        """initdb (the first time) and start; returns once it accepts connections."""
        if not (self.data / "PG_VERSION").exists():
            await asyncio.to_thread(self._init)
        await asyncio.to_thread(self._pg_ctl, "start")

    async def restart(self) -> float:
        """`pg_ctl restart -m fast`: every connection is dropped. Returns the seconds taken."""
        started = time.perf_counter()
        await asyncio.to_thread(self._pg_ctl, "restart", "-m", "fast")
        return time.perf_counter() - started

    def _postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def _backends(self, postmaster: int) -> list[int]:
        """The processes the postmaster forked (client backends, background workers)."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # "pid (comm) state ppid ...": the command name may hold spaces, not ")".
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    found.append(int(stat.parent.name))
        return found

    async def pause(self) -> None:
        """SIGSTOP the server and its backends, as a stalled host would: connections stay open,
        new ones are accepted by the kernel but never answered, queries hang."""
        postmaster = self._postmaster()
        os.kill(postmaster, signal.SIGSTOP)  # first: no new backend is forked meanwhile
        for pid in self._backends(postmaster):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    async def resume(self) -> None:
        """SIGCONT what `pause` stopped."""
        postmaster = self._postmaster()
        for pid in self._backends(postmaster):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        os.kill(postmaster, signal.SIGCONT)

    async def stop(self) -> None:
        """Stop it (immediate: nothing it holds is kept)."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ServiceError):
                await asyncio.to_thread(self._pg_ctl, "stop", "-m", "immediate")

    async def close(self) -> None:
        """Stop it and remove its directory."""
        await self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
