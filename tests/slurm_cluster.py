"""A real single-node SLURM cluster (slurmctld, slurmd, slurmdbd + MariaDB, munge) on
127.0.0.1 under a temporary directory, for tests. Needs root and no systemd.

Every daemon is started here and stopped by PID in `stop()`. Only one cluster can run on a
machine (fixed ports, /etc/slurm/slurm.conf): `start()` refuses to run beside another.
Settings follow the measured notes in shared/notes/slurm-single-node.md.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge", "slurmdbd", "mariadb-server"]
PORTS = (6817, 6818, 6819, 13306)
ETC_CONF = Path("/etc/slurm/slurm.conf")
LOCK = Path("/tmp/lowrank-slurm-cluster.lock")
SQL_PASSWORD = "lowrank-ci"


class ClusterError(RuntimeError):
    pass


def ensure_packages() -> None:
    """Install Debian's SLURM, munge, slurmdbd and MariaDB when absent."""
    needed = ["slurmctld", "slurmd", "sinfo", "munged", "slurmdbd", "mariadbd"]
    if all(shutil.which(b) or Path(f"/usr/sbin/{b}").exists() for b in needed):
        return
    if os.geteuid() != 0:
        raise ClusterError("installing SLURM needs root: apt-get install " + " ".join(PACKAGES))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(cmd, env=env, capture_output=True, check=True)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise ClusterError(f"timed out waiting for {what}")


def _sbin(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


@dataclass
class Cluster:
    root: Path
    host: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    pids: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    lock_fd: int | None = None

    @property
    def conf(self) -> Path:
        return self.root / "etc/slurm.conf"

    @property
    def env(self) -> dict:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def path(self, rel: str) -> Path:
        return self.root / rel

    # -- start ---------------------------------------------------------------------------
    def start(self) -> Cluster:
        if os.geteuid() != 0:
            raise ClusterError("the SLURM test cluster needs root (SlurmUser=root, /etc/slurm)")
        self._lock()
        try:
            busy = [p for p in PORTS if not _port_free(p)]
            if busy:
                raise ClusterError(f"ports {busy} are in use: another cluster runs here")
            if ETC_CONF.exists() or ETC_CONF.is_symlink():
                if ETC_CONF.is_symlink() and not ETC_CONF.resolve().exists():
                    ETC_CONF.unlink()  # stale link of an earlier, killed test run
                else:
                    raise ClusterError(f"{ETC_CONF} exists: another SLURM is configured here")
            ensure_packages()
            self.root.chmod(0o755)  # munged requires the socket's parents to be searchable
            for sub in ("etc", "run", "log", "state", "spool", "lib", "mysql"):
                self.path(sub).mkdir(parents=True, exist_ok=True)
            self.path("etc").chmod(0o700)
            self._start_munge()
            self._start_mariadb()
            self._write_configs()
            self._start_daemon("slurmdbd", [_sbin("slurmdbd")], "run/slurmdbd.pid")
            _wait(lambda: not _port_free(6819), 30, "slurmdbd")
            self._start_daemon("slurmctld", [_sbin("slurmctld"), "-i"], "run/slurmctld.pid")
            self._start_daemon("slurmd", [_sbin("slurmd"), "-N", self.host], "run/slurmd.pid")
            _wait(self._idle, 60, "the node to become idle")
        except BaseException:
            self.stop()
            raise
        return self

    def _lock(self) -> None:
        self.lock_fd = os.open(LOCK, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.lock_fd)
            self.lock_fd = None
            raise ClusterError("another test SLURM cluster holds the lock") from None

    def _start_munge(self) -> None:
        key = self.path("etc/munge.key")
        subprocess.run(
            ["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True
        )
        key.chmod(0o600)
        subprocess.run(
            [
                _sbin("munged"),
                f"--socket={self.path('run/munge.socket')}",
                f"--key-file={key}",
                f"--pid-file={self.path('run/munged.pid')}",
                f"--log-file={self.path('log/munged.log')}",
                f"--seed-file={self.path('lib/munge.seed')}",
            ],
            check=True,
            capture_output=True,
        )
        self._read_pid("munged", "run/munged.pid")

    def _start_mariadb(self) -> None:
        datadir, sock = self.path("mysql"), self.path("run/mysql.sock")
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={datadir}",
                "--user=root",
                "--auth-root-authentication-method=normal",
            ],
            check=True,
            capture_output=True,
        )
        log = open(self.path("log/mariadb.log"), "w")  # noqa: SIM115 (lives with the process)
        proc = subprocess.Popen(
            [
                _sbin("mariadbd"),
                "--no-defaults",
                "--user=root",
                f"--datadir={datadir}",
                f"--socket={sock}",
                "--port=13306",
                "--bind-address=127.0.0.1",
                f"--pid-file={self.path('run/mariadb.pid')}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs["mariadbd"] = proc
        self.pids["mariadbd"] = proc.pid
        _wait(lambda: sock.exists(), 60, "MariaDB")
        sql = (
            f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{SQL_PASSWORD}';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
            f"CREATE USER 'slurm'@'localhost' IDENTIFIED BY '{SQL_PASSWORD}';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
        )
        subprocess.run(
            ["mariadb", "--no-defaults", "-S", str(sock), "-u", "root", "-e", sql],
            check=True,
            capture_output=True,
        )

    def _write_configs(self) -> None:
        node = (
            subprocess.run([_sbin("slurmd"), "-C"], capture_output=True, text=True, check=True)
            .stdout.splitlines()[0]
            .split()
        )
        fields = dict(item.split("=", 1) for item in node)
        memory = int(int(fields.get("RealMemory", "2000")) * 0.9)
        munge = self.path("run/munge.socket")
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=ci",
                    f"SlurmctldHost={self.host}(127.0.0.1)",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={munge}",
                    "AccountingStorageType=accounting_storage/slurmdbd",
                    "AccountingStorageHost=127.0.0.1",
                    "AccountingStoragePort=6819",
                    f"AccountingStoragePass={munge}",
                    "AccountingStoreFlags=job_comment",  # the plugin names the rule in --comment
                    "JobAcctGatherType=jobacct_gather/linux",
                    "JobCompType=jobcomp/filetxt",
                    f"JobCompLoc={self.path('log/jobcomp.txt')}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "MpiDefault=none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "DefMemPerCPU=256",
                    "MinJobAge=300",
                    "ReturnToService=2",
                    "SlurmctldPort=6817",
                    "SlurmdPort=6818",
                    f"SlurmctldPidFile={self.path('run/slurmctld.pid')}",
                    f"SlurmdPidFile={self.path('run/slurmd.pid')}",
                    f"SlurmctldLogFile={self.path('log/slurmctld.log')}",
                    f"SlurmdLogFile={self.path('log/slurmd.log')}",
                    f"StateSaveLocation={self.path('state')}",
                    f"SlurmdSpoolDir={self.path('spool')}",
                    f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={fields['CPUs']} "
                    f"Boards={fields.get('Boards', 1)} SocketsPerBoard={fields['SocketsPerBoard']} "
                    f"CoresPerSocket={fields['CoresPerSocket']} "
                    f"ThreadsPerCore={fields['ThreadsPerCore']} RealMemory={memory} State=UNKNOWN",
                    "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        dbd = self.path("etc/slurmdbd.conf")
        dbd.write_text(
            "\n".join(
                [
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={munge}",
                    f"DbdHost={self.host}",
                    "DbdAddr=127.0.0.1",
                    "DbdPort=6819",
                    "SlurmUser=root",
                    "StorageType=accounting_storage/mysql",
                    "StorageHost=127.0.0.1",
                    "StoragePort=13306",
                    "StorageUser=slurm",
                    f"StoragePass={SQL_PASSWORD}",
                    "StorageLoc=slurm_acct_db",
                    f"PidFile={self.path('run/slurmdbd.pid')}",
                    f"LogFile={self.path('log/slurmdbd.log')}",
                    "",
                ]
            )
        )
        dbd.chmod(0o600)
        ETC_CONF.parent.mkdir(parents=True, exist_ok=True)
        ETC_CONF.symlink_to(self.conf)  # srun inside jobs does not see SLURM_CONF

    def _start_daemon(self, name: str, cmd: list[str], pid_file: str) -> None:
        result = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise ClusterError(f"{name} failed to start: {result.stderr.strip()[-500:]}")
        self._read_pid(name, pid_file)

    def _read_pid(self, name: str, pid_file: str) -> None:
        path = self.path(pid_file)
        _wait(lambda: path.exists() and path.read_text().strip(), 30, f"{name}'s pid file")
        self.pids[name] = int(path.read_text().split()[0])

    def _idle(self) -> bool:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True
        )
        return out.returncode == 0 and out.stdout.strip() == "idle"

    # -- use -----------------------------------------------------------------------------
    def sacct(self) -> str:
        return subprocess.run(
            [
                "sacct",
                "-X",
                "-a",
                "--noheader",
                "--parsable2",
                "--format=JobID,JobName%40,State,Comment%80",
                "--starttime",
                "now-1hour",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    # -- stop ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every daemon this cluster started, by PID, newest first."""
        for name in ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged"):
            pid = self.pids.pop(name, None)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and _alive(pid, self.procs.get(name)):
                time.sleep(0.2)
            if _alive(pid, self.procs.get(name)):
                os.kill(pid, signal.SIGKILL)
        if ETC_CONF.is_symlink() and ETC_CONF.resolve() == self.conf.resolve():
            ETC_CONF.unlink()
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


def _alive(pid: int, proc: subprocess.Popen | None) -> bool:
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
