"""The writer lease of an `s3://` warehouse (Glue, EMR Serverless, Batch): a DynamoDB item.

Why DynamoDB: the writers of an S3 warehouse run on different machines with no shared folder
or pid to check, so the lease is an item in the table `lease_table` (partition key
`lease_name`, TTL attribute `expires_at`) taken with a conditional PutItem, kept alive by a
heartbeat thread and released with a conditional delete. A holder that died stops renewing
and its lease expires after `lease_expiry_seconds`; correctness never depends on the TTL
(docs/adr/0008-writer-lease.md).

The holder counts its own lease as lost once `expiry_seconds` have passed since the start of
its last successful renewal, whatever DynamoDB says then: a holder that was paused (SIGSTOP,
a long GC) or cut off from DynamoDB cannot know whether another writer has taken over, so it
must stop before its next commit (`confirm`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from sluiceway.errors import ConfigurationError
from sluiceway.lease.holder import LeaseHolder
from sluiceway.logs import get_logger

LOGGER = get_logger(__name__)


class DynamoDbLease:
    """The lease of an s3:// warehouse: one DynamoDB item per namespace, with an expiry."""

    def __init__(self, client: Any, table: str, name: str, expiry_seconds: int) -> None:
        self.client = client
        self.table = table
        self.name = name
        self.expiry_seconds = max(3, expiry_seconds)
        self.where = f"DynamoDB table {table}, lease_name {name}"
        # time.monotonic() until which the lease is surely ours (a paused process sees it pass).
        self.valid_until = 0.0

    def try_acquire(self, me: LeaseHolder) -> LeaseHolder | None:
        for _turn in range(3):  # an expired or released item may vanish between the calls
            now = int(time.time())
            sent = time.monotonic()
            try:
                self._call(
                    "put_item",
                    Item=self._item(me, now + self.expiry_seconds),
                    ConditionExpression="attribute_not_exists(lease_name) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                )
                self.valid_until = sent + self.expiry_seconds
                return None
            except _ConditionFailed:
                pass
            item = self._call("get_item", Key=self._key(), ConsistentRead=True).get("Item")
            if item:
                return _holder_from_item(item)
        return LeaseHolder("another writer", 0, "", "", "")

    @contextmanager
    def kept(self, me: LeaseHolder) -> Iterator[Callable[[], bool]]:
        heartbeat = _Heartbeat(self, me, interval=self.expiry_seconds / 4)
        heartbeat.start()
        try:
            yield heartbeat.lost.is_set
        finally:
            heartbeat.stop()

    def confirm(self, me: LeaseHolder) -> bool:
        """Ours only while not past our own expiry and the conditional renewal succeeds."""
        if self.expired():
            return False
        try:
            return self.renew(me)
        except Exception as error:  # unreachable DynamoDB: the commit cannot be proven safe
            LOGGER.error("could not confirm writer lease %s: %s", self.where, error)
            return False

    def expired(self) -> bool:
        """True once expiry_seconds passed since the last renewal that succeeded began."""
        return time.monotonic() >= self.valid_until

    def renew(self, me: LeaseHolder) -> bool:
        """Push the expiry forward; False when the lease is no longer ours."""
        sent = time.monotonic()
        try:
            self._call(
                "update_item",
                Key=self._key(),
                UpdateExpression="SET expires_at = :expires",
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={
                    ":expires": {"N": str(int(time.time()) + self.expiry_seconds)},
                    ":token": {"S": me.token},
                },
            )
        except _ConditionFailed:
            return False
        self.valid_until = sent + self.expiry_seconds
        return True

    def release(self, me: LeaseHolder) -> None:
        try:
            self._call(
                "delete_item",
                Key=self._key(),
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={":token": {"S": me.token}},
            )
        except _ConditionFailed:
            LOGGER.warning("writer lease %s was no longer ours; left it in place", self.where)

    def _key(self) -> dict[str, dict[str, str]]:
        return {"lease_name": {"S": self.name}}

    def _item(self, me: LeaseHolder, expires_at: int) -> dict[str, dict[str, str]]:
        item = {key: {"S": str(value)} for key, value in asdict(me).items()}
        item["pid"] = {"N": str(me.pid)}
        return {**self._key(), **item, "expires_at": {"N": str(expires_at)}}

    def _call(self, operation: str, **parameters: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            answer: dict[str, Any] = getattr(self.client, operation)(
                TableName=self.table, **parameters
            )
            return answer
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed from error
            if code == "ResourceNotFoundException":
                raise ConfigurationError(
                    f"the writer-lease table {self.table} does not exist; deploy the stack's "
                    "lease table or fix SLUICEWAY_LEASE_TABLE"
                ) from error
            raise


class _ConditionFailed(Exception):
    """A conditional DynamoDB write found another holder's lease."""


def _holder_from_item(item: dict[str, dict[str, str]]) -> LeaseHolder:
    def text(name: str) -> str:
        value = item.get(name, {})
        return value.get("S") or value.get("N") or ""

    return LeaseHolder(
        job=text("job"),
        pid=int(text("pid") or 0),
        host=text("host"),
        started_at=text("started_at"),
        token=text("token"),
        process_start=text("process_start"),
    )


class _Heartbeat(threading.Thread):
    """Renews a DynamoDB lease every quarter of its expiry; records when it was lost."""

    def __init__(self, lease: DynamoDbLease, me: LeaseHolder, interval: float) -> None:
        super().__init__(name="sluiceway-lease-heartbeat", daemon=True)
        self.lease = lease
        self.me = me
        self.interval = interval
        self.lost = threading.Event()
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            if self.lease.expired():  # paused, or every renewal failed: lost for good
                self.lost.set()
                LOGGER.error("writer lease %s expired before a renewal succeeded", self.lease.where)
                return
            try:
                if not self.lease.renew(self.me):
                    self.lost.set()
                    LOGGER.error("writer lease %s was taken by another writer", self.lease.where)
                    return
            except Exception as error:  # a network hiccup: the next beat tries again, in time
                LOGGER.warning("could not renew writer lease %s: %s", self.lease.where, error)

    def stop(self) -> None:
        self._stopping.set()
        self.join()
