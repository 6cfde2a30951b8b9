"""A private PostgreSQL server (the Debian package's binaries), started and stopped by us.

The real database engine for store tests and benchmarks: its own data directory, a free
port on loopback and a socket directory of its own, so it never meets the machine's
cluster or another test run. Stopped by ``pg_ctl`` on its data directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from silonet.devices.vtepdb import free_port

OS_USER = "postgres"  # PostgreSQL refuses to run as root: the owner of its files when we are root
SUPERUSER = "postgres"  # the database role initdb creates (trust authentication on loopback)


PRIVATE_PREFIX = "silonet-pg-"  # directories under /tmp for servers whose workdir the postgres user cannot reach
OWNER = "owner.pid"  # the process that started the server


class PostgresError(RuntimeError):
    """The server could not be set up, started, stopped or asked something; says why."""


def _bindir() -> Path | None:
    """The newest installed server's bin directory."""
    found = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "pg_ctl").exists()]
    return max(found, key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0)) if found else None


def available() -> str | None:
    """None when a server can run here, else why not."""
    if _bindir() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (Debian package postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"running as root and there is no '{OS_USER}' OS user to run the server as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg driver is not installed (pip install -e .[postgres])"
    return None


def _reachable_by(path: Path, uid: int, gid: int) -> bool:
    """Whether ``uid`` can enter every directory from / down to ``path`` (root's pytest
    directories are 0700: the server's user cannot reach a data directory below them)."""
    for d in [path, *path.parents]:
        try:
            st = d.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            need = stat.S_IXUSR
        elif st.st_gid == gid:
            need = stat.S_IXGRP
        else:
            need = stat.S_IXOTH
        if not st.st_mode & need:
            return False
    return True


class Postgres:
    """One PostgreSQL server: ``initdb`` on start, ``pg_ctl stop`` on stop.

    ``durable=False`` (tests, benchmarks of our code) turns off fsync: a crash of the
    machine loses the data, which a throw-away server does not mind."""

    def __init__(self, workdir: Path, port: int | None = None, durable: bool = False) -> None:
        self.dir = workdir
        self.port = port or free_port()
        self.durable = durable
        self.bindir = _bindir()
        self._private: Path | None = None  # a directory under /tmp we made because workdir is unreachable
        self.home = workdir  # data, socket and log live here (or in _private)

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log(self) -> Path:
        return self.home / "postgres.log"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Postgres:
        why = available()
        if why:
            raise PostgresError(f"PostgreSQL cannot run here: {why}")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._place()
        (self.home / OWNER).write_text(f"{os.getpid()}\n")  # reap_orphans() leaves it while we live
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
                      "--no-sync", "--no-instructions", what="initdb")
        opts = (f"-k {self.home} -c listen_addresses=127.0.0.1 -p {self.port} -c max_connections=300"
                f" -c unix_socket_permissions=0777")
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w", "-t", "60", "start",
                  what=f"start on 127.0.0.1:{self.port}")
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown), then remove a private directory made for it. When
        the stop fails, the files stay for a look and the error says why."""
        if self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop", what="stop")
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            (self.dir / "server-dir").unlink(missing_ok=True)
            self._private = None
            self.home = self.dir

    def running(self) -> bool:
        """Whether a server runs on the data directory (``pg_ctl status``: 0 running, 3 not)."""
        if not (self.data / "postmaster.pid").exists():
            return False
        return self._run("pg_ctl", "-D", str(self.data), "status", what="status", ok=(0, 3)) == 0

    def pid(self) -> int | None:
        """The postmaster's pid, as its pid file says (None: no server on the data directory)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- use -----------------------------------------------------------------------------------

    def url(self, database: str = "silonet") -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> list[tuple]:
        """One statement in autocommit (CREATE/DROP DATABASE cannot run in a transaction)."""
        import psycopg

        try:
            with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database,
                                 autocommit=True, connect_timeout=10) as conn:
                cur = conn.execute(sql)
                return cur.fetchall() if cur.description else []
        except psycopg.Error as e:
            raise PostgresError(f"PostgreSQL on 127.0.0.1:{self.port}: {sql!r} failed: {e}") from e

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``); returns its URL."""
        _check_name(name)
        sql = f'CREATE DATABASE "{name}"'
        if template:
            _check_name(template)
            sql += f' TEMPLATE "{template}"'
        self.execute(sql)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing what is still connected to it."""
        _check_name(name)
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- internals -----------------------------------------------------------------------------

    def _place(self) -> None:
        """As root, the server runs as the ``postgres`` user, which must own its directory and
        reach it; when ``workdir`` is below a directory it cannot enter, use one under /tmp."""
        if os.geteuid() != 0:
            return
        pw = pwd.getpwnam(OS_USER)
        if self._private is None and not _reachable_by(self.dir, pw.pw_uid, pw.pw_gid):
            self._private = Path(tempfile.mkdtemp(prefix=PRIVATE_PREFIX))
            self.home = self._private
            (self.dir / "server-dir").write_text(f"{self._private}\n")  # where to look for the log
        os.chown(self.home, pw.pw_uid, pw.pw_gid)

    def _run(self, tool: str, *args: str, what: str, ok: tuple[int, ...] = (0,)) -> int:
        assert self.bindir is not None
        kwargs: dict = {}
        if os.geteuid() == 0:
            kwargs = {"user": OS_USER, "group": pwd.getpwnam(OS_USER).pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C.UTF-8", "PGTZ": "UTC"}
        try:
            out = subprocess.run([str(self.bindir / tool), *args], cwd=self.home, env=env, capture_output=True,
                                 text=True, timeout=120, **kwargs)
        except subprocess.TimeoutExpired as e:
            raise PostgresError(f"PostgreSQL in {self.home}: {what} took over {e.timeout} s{self._log_tail()}") from e
        if out.returncode not in ok:
            said = (out.stderr or out.stdout).strip().splitlines()[-5:]
            raise PostgresError(f"PostgreSQL in {self.home}: {what} failed ({tool} exit {out.returncode}): "
                                f"{' | '.join(said)}{self._log_tail()}")
        return out.returncode

    def _log_tail(self, lines: int = 10) -> str:
        try:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return "\nlast lines of " + str(self.log) + ":\n" + "\n".join(tail) if tail else ""


def reap_orphans() -> list[Path]:
    """Stop and remove the private servers whose starting process is gone (a test run that was
    killed before its teardown), so they do not pile up. Servers of live processes are left."""
    reaped = []
    for home in Path(tempfile.gettempdir()).glob(f"{PRIVATE_PREFIX}*"):
        try:
            owner = int((home / OWNER).read_text())
        except (OSError, ValueError):
            continue  # being set up right now, or not ours
        if _alive(owner):
            continue
        server = Postgres(home)
        server._private = home  # remove it once stopped
        try:
            server.stop()
        except PostgresError:
            continue
        reaped.append(home)
    return reaped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise PostgresError(f"database name {name!r}: letters, digits and _ only, at most 63")
