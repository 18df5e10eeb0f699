"""The landing uploader: a cron job that moves complete partner files into S3 exactly once."""

from sluiceway.upload.retry import RetryPolicy
from sluiceway.upload.run import UploadOptions, UploadReport, run_upload
from sluiceway.upload.transfer import TransferSettings, s3_client

__all__ = [
    "RetryPolicy",
    "TransferSettings",
    "UploadOptions",
    "UploadReport",
    "run_upload",
    "s3_client",
]
