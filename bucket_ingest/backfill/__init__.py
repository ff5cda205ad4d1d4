"""Backfill: register the objects already in a bucket as the rows the live functions would have made.

``bucket-ingest backfill`` (``bucket_ingest.commands.backfill``) drives it: ``target`` reads the URI, the
per-cloud listers (``s3``, ``gcs``, ``azure``) turn listing pages into ``ObjectEvent``s, ``runner`` decides and
registers them in batches through ``shared.ingest``, ``checkpoint`` makes it resumable, ``progress`` shows it, and
``batch_operations`` hands buckets of any size to S3 Batch Operations. See docs/backfill.md.
"""
