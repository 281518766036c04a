"""Where values too large for a store item live: a BlobStore protocol, in memory and on S3."""

from pflambda.blobs.base import BlobStore

__all__ = ["BlobStore"]
