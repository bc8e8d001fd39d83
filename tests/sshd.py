"""A throwaway OpenSSH server for tests: Debian's ``sshd`` on 127.0.0.1, key auth only.

Everything it needs (host key, client key, authorized_keys, config, pid file, log) lives
in one temporary directory; the server runs in the foreground (``-D``) as our child and
is killed at teardown.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
INSTALL_HINT = "apt-get install openssh-server"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_sshd() -> Path:
    """The sshd binary. In CI (where .ci/run installs it) a missing sshd fails the test; on a
    developer's machine without openssh-server the test is skipped, saying how to get it."""
    if not SSHD.is_file() or not os.access(SSHD, os.X_OK):
        msg = f"{SSHD} not found: the SSH tests need Debian's openssh-server (run '{INSTALL_HINT}')"
        if os.environ.get("CI"):
            raise AssertionError(msg)
        import pytest

        pytest.skip(msg)
    return SSHD


def keygen(path: Path) -> None:
    """A passphrase-less ed25519 key pair at ``path`` and ``path.pub``."""
    if shutil.which("ssh-keygen") is None:
        raise AssertionError(f"ssh-keygen not found (run '{INSTALL_HINT}')")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mlopskit-tests", "-f", str(path)],
        check=True,
        capture_output=True,
    )


@dataclass
class SSHServer:
    port: int
    user: str
    client_key: Path
    host_pubkey: str
    log: Path
    proc: subprocess.Popen[bytes]

    def known_hosts_line(self) -> str:
        """For clients that check host keys (dvc-ssh does not)."""
        return f"[127.0.0.1]:{self.port} {self.host_pubkey}\n"

    def url(self, path: Path | str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def _descendants(self) -> list[list[int]]:
        """The listener's descendants by depth: per-connection sshd processes, then their
        session children. They live in sessions of their own and would outlive the
        listener while a client (DVC's cached SSH filesystem) keeps its connection open."""
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(stat.parent.name))
        levels: list[list[int]] = []
        level = children.get(self.proc.pid, [])
        while level:
            levels.append(level)
            level = [c for pid in level for c in children.get(pid, [])]
        return levels

    def stop(self) -> None:
        """End sshd's processes deepest first, so each is reaped by its own parent.

        Descendants get SIGHUP: the internal-sftp child inherits sshd's SIGTERM handler
        (a flag nobody reads there) and would ignore SIGTERM."""
        if self.proc.poll() is None:
            for level in reversed(self._descendants()):
                for pid in level:
                    try:
                        os.kill(pid, signal.SIGHUP)
                    except ProcessLookupError:
                        pass
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and any(
                    Path(f"/proc/{pid}").exists() for pid in level
                ):
                    time.sleep(0.02)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"sshd exited with code {proc.returncode} before listening:\n"
                + log.read_text(errors="replace")
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(
        f"sshd did not accept connections on port {port} within {timeout}s:\n"
        + log.read_text(errors="replace")
    )


def start(workdir: Path, *, timeout: float = 10.0) -> SSHServer:
    """Generate keys and a config under ``workdir`` and start sshd on a free port."""
    sshd = require_sshd()
    workdir.mkdir(parents=True, exist_ok=True)
    # Privilege separation directory; the Debian package creates it only at boot.
    PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)

    host_key = workdir / "ssh_host_ed25519_key"
    client_key = workdir / "id_ed25519"
    keygen(host_key)
    keygen(client_key)
    authorized = workdir / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    authorized.chmod(0o600)

    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {host_key}",
                f"PidFile {workdir / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "StrictModes no",
                "UsePAM no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UseDNS no",
                "PrintMotd no",
                "Subsystem sftp internal-sftp",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    log = workdir / "sshd.log"
    with log.open("wb") as out:
        # sshd re-executes itself, so it must be started by its absolute path.
        proc = subprocess.Popen(
            [str(sshd), "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = SSHServer(
        port=port,
        user=getpass.getuser(),
        client_key=client_key,
        host_pubkey=Path(f"{host_key}.pub").read_text().strip(),
        log=log,
        proc=proc,
    )
    try:
        _wait_listening(proc, port, log, timeout)
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def running(workdir: Path, *, timeout: float = 10.0) -> Iterator[SSHServer]:
    """``start`` and, whatever happens, stop."""
    server = start(workdir, timeout=timeout)
    try:
        yield server
    finally:
        server.stop()
