"""A single-node Kafka broker in KRaft mode on 127.0.0.1: fetched pinned with Maven, started,
restarted and stopped.

Why: the stream job reads a Kafka topic (MSK on AWS); the tests and `make stack` run it
against a real broker speaking the same protocol, with the same client code and only the
bootstrap address changed (DESIGN principle 13, docs/adr/0011-kafka-broker-in-tests.md).

- Fetch: every jar of the broker's runtime class path (`org.apache.kafka:kafka_2.13` and what
  Maven resolves for it, plus the log4j2 binding for its slf4j logging) is pinned with its
  SHA-256 in data/kafka-server.lock. One mvn run (`dependency:copy-dependencies` over a
  generated POM that names exactly those jars) copies them into a temporary folder; it becomes
  `<prefix>/share/sluiceway/kafka/<version>` only if every digest is the locked one, and a
  complete install is not fetched again (`install_kafka`, `make kafka`).
- Run: `kafka.tools.StorageTool format` (a fixed cluster id, once per log folder), then
  `kafka.Kafka` as broker and controller in one JVM (512 MB heap, C1 only) on Java 17, a PLAINTEXT
  listener and a controller listener on 127.0.0.1, topics created only explicitly, logging
  to `<data_dir>/logs/server.log` (`running_kafka`). `KafkaBroker.restart()` stops it and
  starts it again on the same log folder and ports: the records stay, the address stays.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluiceway.errors import ConfigurationError
from sluiceway.maven_artifacts import (
    PinnedArtifact,
    copy_pinned,
    default_local_repository,
    lock_line,
    read_lock,
    resolve_runtime,
    sha256_of,
)

LOCK = Path(__file__).parent / "data" / "kafka-server.lock"
SERVER_ARTIFACT = "kafka_2.13"
# Kafka 4's log4j2 has no binding for the slf4j API its code logs through; the release
# tarball adds this one, the POM does not name it.
LOG4J_SLF4J = PinnedArtifact("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3", "")
# A fixed cluster id (16 bytes, base64url): a log folder formatted by one run is the same
# cluster to the next, whatever started it.
CLUSTER_ID = "c2x1aWNld2F5LWthZmthIQ"
NODE_ID = 1
HEAP = "512m"
STARTUP_SECONDS = 90
STOP_SECONDS = 20
# Written last into an install folder: its absence means an interrupted install.
INSTALLED_MARKER = ".sluiceway-installed"
# Broker and controller log to a file; only a JVM that cannot start prints to jvm.out.
LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka-request.name = kafka.request.logger
logger.kafka-request.level = WARN
logger.state-change.name = state.change.logger
logger.state-change.level = WARN
"""


def pinned_server(lock: Path = LOCK) -> list[PinnedArtifact]:
    """Every pinned jar of the broker's class path; a lock without the broker is an error."""
    pins = read_lock(lock)
    if not any(pin.artifact == SERVER_ARTIFACT for pin in pins):
        raise ConfigurationError(f"{lock} pins no org.apache.kafka:{SERVER_ARTIFACT}")
    return pins


def kafka_cache(prefix: str = sys.prefix) -> Path:
    """Where the broker's jars live: beside the interpreter, as Trino and the Iceberg jars."""
    return Path(prefix) / "share" / "sluiceway" / "kafka"


@dataclass(frozen=True)
class KafkaInstall:
    """An installed broker: `home/libs` holds every jar of its class path."""

    home: Path
    version: str

    @property
    def classpath(self) -> str:
        return str(self.home / "libs" / "*")


def install_kafka(
    cache: Path | None = None,
    lock: Path = LOCK,
    local_repository: Path | None = None,
    say: Callable[[str], None] = print,
    executable: str = "mvn",
) -> KafkaInstall:
    """The pinned broker, installed; fetched only if no complete install of this lock exists.

    A complete install (its marker holds the lock's pins) is returned at once, without mvn.
    Otherwise one mvn run copies every pinned jar into a temporary folder, which becomes the
    install only if each jar's SHA-256 is the locked one; a jar whose digest differs is
    removed from Maven's local repository too (mvn never checks its local copies again) and
    fails the install.
    """
    pins = pinned_server(lock)
    server = next(pin for pin in pins if pin.artifact == SERVER_ARTIFACT)
    root = cache or kafka_cache()
    install = KafkaInstall(root / server.version, server.version)
    expected = "".join(f"{lock_line(pin)}\n" for pin in pins)
    marker = install.home / INSTALLED_MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == expected:
        return install
    repository = local_repository or default_local_repository()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{server.version}."))
    try:
        say(f"fetching Kafka {server.version} ({len(pins)} jars) with Maven")
        started = time.monotonic()
        copies = copy_pinned(
            pins,
            staging / "libs",
            repository,
            subject=f"Kafka {server.coordinate} (data/{lock.name})",
            rerun="make kafka",
            executable=executable,
        )
        wrong = []
        for pin, path in copies.items():
            found = sha256_of(path) if path.is_file() else "nothing"
            if found != pin.sha256:
                wrong.append(f"{pin.coordinate}: sha256 {found}, locked {pin.sha256}")
                (repository / pin.repository_path).unlink(missing_ok=True)
        if wrong:
            raise ConfigurationError(
                f"mvn fetched jars that {lock.name} does not pin, not kept (a damaged "
                "transfer, a mirror serving another file, or a lock edited without its "
                f"digests): {'; '.join(wrong)}"
            )
        (staging / INSTALLED_MARKER).write_text(expected, encoding="utf-8")
        shutil.rmtree(install.home, ignore_errors=True)
        staging.rename(install.home)
        say(f"Kafka {server.version} in {install.home} ({time.monotonic() - started:.0f} s)")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return install


def relock(
    version: str,
    lock: Path = LOCK,
    local_repository: Path | None = None,
    executable: str = "mvn",
) -> list[PinnedArtifact]:
    """Write a lock for Kafka `version`: its runtime closure as mvn resolves it, with the
    digests of the files mvn fetched (with --strict-checksums, so checked against the
    repository's own .sha1). `python -m sluiceway.kafka_server --relock VERSION`."""
    roots = [PinnedArtifact("org.apache.kafka", SERVER_ARTIFACT, version, ""), LOG4J_SLF4J]
    pins = resolve_runtime(
        roots,
        local_repository or default_local_repository(),
        subject=f"org.apache.kafka:{SERVER_ARTIFACT}:{version}",
        rerun=f"python -m sluiceway.kafka_server --relock {version}",
        executable=executable,
    )
    header = [
        line for line in lock.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    ]
    width = max(len(pin.coordinate) for pin in pins)
    lock.write_text(
        "\n".join([*header, *(lock_line(pin, width) for pin in pins)]) + "\n", encoding="utf-8"
    )
    return pins


# --- configuration ---------------------------------------------------------------------------


def server_properties(
    log_dir: Path, port: int, controller_port: int, partitions: int = 1
) -> dict[str, str]:
    """Broker and controller in one node on 127.0.0.1, every replication factor 1, topics made
    only on purpose, small segments, buffers and thread pools: the 2-core machine runs Spark
    beside it."""
    return {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": str(partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.segment.bytes": str(16 * 1024 * 1024),
        "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
        "num.network.threads": "2",
        "num.io.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "background.threads": "2",
    }


def jvm_options(logs: Path, heap: str = HEAP) -> list[str]:
    """A small heap; C1 only and the serial collector: on 2 busy cores the broker starts and
    restarts in about half the time, and tens of MB/s of small records need no C2."""
    return [
        f"-Xmx{heap}",
        "-Xms64m",
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={logs}",
        f"-Dlog4j2.configurationFile={logs.parent / 'log4j2.properties'}",
    ]


def _properties(values: Mapping[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


# --- running ---------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports on 127.0.0.1."""
    ports: set[int] = set()
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.add(int(probe.getsockname()[1]))
    return sorted(ports)


def java_executable(java_home: Path | None = None) -> str:
    """`java` of `java_home`, else of JAVA_HOME, else the first on PATH (Java 17 here)."""
    home = java_home or (Path(os.environ["JAVA_HOME"]) if os.environ.get("JAVA_HOME") else None)
    found = str(home / "bin" / "java") if home else shutil.which("java")
    if not found or not Path(found).is_file():
        raise ConfigurationError("no `java`: the Kafka broker needs Java 17+ (as Spark does)")
    return found


@dataclass
class KafkaBroker:
    """A broker in `data_dir` (its log folder `kafka-logs`, its own log `logs/server.log`),
    answering at `bootstrap`. Made by `running_kafka`; `restart()` keeps folder and ports."""

    install: KafkaInstall
    data_dir: Path
    port: int
    controller_port: int
    partitions: int = 1
    heap: str = HEAP
    java_home: Path | None = None
    startup_seconds: float = 0.0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "kafka-logs"

    @property
    def server_log(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Format the log folder if new, start the JVM, wait until it answers metadata."""
        with self._lock:
            if self.running:
                return
            started = time.monotonic()
            config = self._write_config()
            if not (self.log_dir / "meta.properties").is_file():
                self._format(config)
            with open(self.data_dir / "logs" / "jvm.out", "ab") as output:
                self._process = subprocess.Popen(
                    [*self._java(), "kafka.Kafka", str(config)],
                    cwd=self.data_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_stop_with_parent,
                )
            self._wait_until_answering()
            self.startup_seconds = time.monotonic() - started

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (a clean shutdown, everything flushed), SIGKILL after STOP_SECONDS; or
        SIGKILL at once with `kill` (a crash: the next start recovers the log)."""
        with self._lock:
            process, self._process = self._process, None
            if process is None or process.poll() is not None:
                return
            if kill:
                process.kill()
            else:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self, *, kill: bool = False) -> None:
        """Stop and start again on the same log folder and ports: same bootstrap, same records."""
        self.stop(kill=kill)
        self.start()

    def create_topic(self, name: str, partitions: int = 1) -> str:
        """Create `name` (auto-creation is off); its name."""
        create_topic(self.bootstrap, name, partitions)
        return name

    def _java(self) -> list[str]:
        return [
            java_executable(self.java_home),
            *jvm_options(self.data_dir / "logs", self.heap),
            "-cp",
            self.install.classpath,
        ]

    def _write_config(self) -> Path:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.properties").write_text(LOG4J2, encoding="utf-8")
        config = self.data_dir / "server.properties"
        properties = server_properties(
            self.log_dir, self.port, self.controller_port, self.partitions
        )
        config.write_text(_properties(properties), encoding="utf-8")
        return config

    def _format(self, config: Path) -> None:
        command = [*self._java(), "kafka.tools.StorageTool", "format"]
        command += ["--cluster-id", CLUSTER_ID, "--config", str(config), "--ignore-formatted"]
        run = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=STARTUP_SECONDS,
            check=False,
        )
        if run.returncode != 0:
            raise ConfigurationError(
                f"formatting the Kafka log folder {self.log_dir} failed (exit {run.returncode}): "
                f"{(run.stderr or run.stdout).strip()[-500:]}"
            )

    def _wait_until_answering(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ConfigurationError(
                    f"the Kafka broker exited with {self._process.returncode} while starting; "
                    f"see {self.server_log} and {self.data_dir / 'logs' / 'jvm.out'}"
                )
            if broker_answers(self.bootstrap):
                return
            time.sleep(0.2)
        raise ConfigurationError(
            f"the Kafka broker did not answer within {STARTUP_SECONDS} s; see {self.server_log}"
        )


def _stop_with_parent() -> None:
    """In the broker's process before exec: SIGTERM it when the process that started it dies,
    so a test run or `make stack` killed hard leaves no broker behind (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    # No retries of its own and quiet: a broker that is down is an answer here, not a log line.
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "log_level": 0})


def broker_answers(bootstrap: str, timeout: float = 1.0) -> bool:
    """A metadata request through the Python client names this broker."""
    from confluent_kafka import KafkaException

    try:
        metadata = _admin(bootstrap).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return NODE_ID in metadata.brokers


def create_topic(bootstrap: str, name: str, partitions: int = 1, timeout: float = 30.0) -> None:
    """Create a topic (replication factor 1) and wait until every partition has its leader."""
    from confluent_kafka.cimpl import NewTopic

    admin = _admin(bootstrap)
    future = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=timeout)[name]
    future.result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topic = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
        leaders = [] if topic is None or topic.error else topic.partitions.values()
        if len(leaders) == partitions and all(p.leader == NODE_ID for p in leaders):
            return
        time.sleep(0.1)
    raise ConfigurationError(f"topic {name} has no leader for every partition after {timeout} s")


@contextmanager
def running_kafka(
    data_dir: Path,
    install: KafkaInstall | None = None,
    port: int = 0,
    controller_port: int = 0,
    partitions: int = 1,
    heap: str = HEAP,
    java_home: Path | None = None,
) -> Iterator[KafkaBroker]:
    """A started broker (installed first if `install` is None), stopped on the way out.

    Port 0 takes a free port, chosen once: a restart keeps both ports.
    """
    chosen = iter(free_ports(2))
    broker = KafkaBroker(
        install or install_kafka(),
        data_dir,
        port or next(chosen),
        controller_port or next(chosen),
        partitions,
        heap,
        java_home,
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


# --- `make kafka`, `python -m sluiceway.kafka_server` -----------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sluiceway.kafka_server",
        description="Install the Kafka broker pinned in lib/sluiceway/data/kafka-server.lock "
        "(with Maven, once; every jar's SHA-256 checked) and run it on 127.0.0.1 in KRaft mode "
        "until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=0, help="PLAINTEXT port (default: free)")
    parser.add_argument("--controller-port", type=int, default=0, help="(default: free)")
    parser.add_argument("--partitions", type=int, default=1, help="num.partitions")
    parser.add_argument("--data-dir", type=Path, help="keep the log folder here (default: temp)")
    parser.add_argument("--install-only", action="store_true", help="install, do not run")
    parser.add_argument("--relock", metavar="VERSION", help="rewrite the lock for this Kafka")
    args = parser.parse_args(argv)
    try:
        if args.relock:
            pins = relock(args.relock)
            print(f"{LOCK}: {len(pins)} jars pinned for Kafka {args.relock}")
            return 0
        started = time.monotonic()
        install = install_kafka()
        print(f"Kafka {install.version} in {install.home} ({time.monotonic() - started:.1f} s)")
        if args.install_only:
            return 0
        return _serve(args.data_dir, args.port, args.controller_port, args.partitions)
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _serve(data_dir: Path | None, port: int, controller_port: int, partitions: int) -> int:
    stopping = threading.Event()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: stopping.set())
    folder = data_dir or Path(tempfile.mkdtemp(prefix="sluiceway-kafka-"))
    try:
        with running_kafka(folder, port=port, controller_port=controller_port,
                           partitions=partitions) as broker:  # fmt: skip
            print(
                f"Kafka broker (KRaft) running, data in {folder}, log {broker.server_log}\n"
                f"export SLUICEWAY_KAFKA_BOOTSTRAP={broker.bootstrap}\n"
                "Ctrl-C stops it.",
                flush=True,
            )
            while not stopping.wait(0.5):
                pass
            print("stopping the Kafka broker", flush=True)
    finally:
        if data_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
