"""A real, throw-away PostgreSQL server started by the tests (initdb + pg_ctl in a temp folder).

PostgreSQL refuses to run as root, so as root the server runs as `nobody` (the folder is handed
to it); as any other user it runs as that user. It listens on 127.0.0.1 at a free port with
trust authentication, and with fsync off: a test database needs no durability against power
loss, and the suite stays fast. `database()` creates a fresh database per test.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

SUPERUSER = "evolve"


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl live: PATH, `pg_config --bindir`, or Debian's versioned folder."""
    for name in ("initdb",):
        found = shutil.which(name)
        if found:
            return Path(os.path.realpath(found)).parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout
        if out.strip() and (Path(out.strip()) / "initdb").exists():
            return Path(out.strip())
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="evolve-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "nobody" if os.geteuid() == 0 else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                  "--encoding=UTF8", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                   f"-c unix_socket_directories={self.root} -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")
        self.url = f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([str(self.bindir / tool), *args], capture_output=True, text=True,
                              timeout=120, user=self.user, cwd=self.root,
                              env={**os.environ, "LC_ALL": "C.UTF-8"})
        if done.returncode != 0:
            log = self.root / "server.log"
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr[-2000:]}"
                               + (f"\n{log.read_text()[-2000:]}" if log.exists() else ""))

    def _admin(self, sql: str) -> None:
        import psycopg

        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                                     dbname="postgres", autocommit=True) as conn:
                    conn.execute(sql)
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def database(self, name: str | None = None) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def password_user(self, password: str, database: str) -> str:
        """A new login role that must give `password` (scram-sha-256; everyone else keeps
        trust), owning `database`; its name."""
        name = f"u_{uuid.uuid4().hex[:10]}"
        self._admin(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")
        self._admin(f'ALTER DATABASE "{database}" OWNER TO "{name}"')
        hba = self.data / "pg_hba.conf"
        rule = f"host all {name} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rule + hba.read_text())  # first match wins: before the trust lines
        self._run("pg_ctl", "-D", str(self.data), "reload")
        time.sleep(0.5)  # the postmaster rereads the file on SIGHUP
        return name

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)
