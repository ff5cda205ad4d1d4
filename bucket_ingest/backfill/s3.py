"""Listing an S3 bucket with ``ListObjectsV2`` (boto3's paginator).

- https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html : ``Key``, ``Size``, ``ETag`` (quoted),
  ``LastModified``; keys come in UTF-8 binary order, and boto3 asks for ``EncodingType=url`` and decodes the keys,
  so any key survives the XML. No content type, as in S3's event notifications (the media type then follows the
  extension in both paths). No version id: ``ListObjectsV2`` lists current versions without it.
- The region goes into the object's URI. ``HeadBucket`` answers it (``x-amz-bucket-region``) and needs only
  ``s3:ListBucket``, like the listing: https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html
- The endpoint is boto3's: ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, or ``--endpoint-url``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bucket_ingest.backfill.listing import Endpoints, ListingError, Page, Position, event_time
from bucket_ingest.backfill.target import Target
from shared.events.model import Cloud, EventKind, ObjectEvent

LIST_PERMISSION = "s3:ListBucket"


class S3Lister:
    def __init__(self, target: Target, endpoints: Endpoints) -> None:
        self.target = target
        self.endpoints = endpoints
        self._client: Any = None
        self.region: str | None = endpoints.region

    def __repr__(self) -> str:
        return f"S3Lister({self.target.uri!r})"

    def _s3(self) -> Any:
        if self._client is None:
            import boto3  # type: ignore[import-untyped, unused-ignore]
            from botocore.config import Config  # type: ignore[import-untyped, unused-ignore]

            session = boto3.session.Session()
            self._client = session.client(
                "s3",
                endpoint_url=self.endpoints.url,
                region_name=self.region or session.region_name or "us-east-1",
                config=Config(retries={"max_attempts": 8, "mode": "adaptive"}),
            )
        return self._client

    def bucket_region(self) -> str:
        """The bucket's region (``--region`` wins); raises ``ListingError`` when the bucket cannot be reached."""
        if self.region is None:
            response = self._call(lambda: self._s3().head_bucket(Bucket=self.target.bucket))
            headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            self.region = response.get("BucketRegion") or headers.get("x-amz-bucket-region") or "us-east-1"
        return self.region

    def check(self) -> None:
        self.bucket_region()
        self._call(lambda: self._s3().list_objects_v2(Bucket=self.target.bucket, Prefix=self.target.prefix, MaxKeys=1))

    def pages(self, start: Position) -> Iterator[Page]:
        region = self.bucket_region()
        arguments: dict[str, Any] = {"Bucket": self.target.bucket, "Prefix": self.target.prefix}
        if start.last_key is not None:
            arguments["StartAfter"] = start.last_key
        paginator = self._s3().get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(**arguments, PaginationConfig={"PageSize": self.endpoints.page_size}))
        while True:
            page = self._call(lambda: next(pages, None))
            if page is None:
                return
            yield Page([self._event(item, region) for item in page.get("Contents", ())], token=None)

    def _event(self, item: dict[str, Any], region: str) -> ObjectEvent:
        etag = item.get("ETag")
        return ObjectEvent(
            cloud=Cloud.AWS,
            kind=EventKind.CREATED,
            bucket=self.target.bucket,
            key=item["Key"],
            region=region,
            size=item.get("Size"),
            etag=etag.strip('"') if etag else None,
            time=event_time(item.get("LastModified")),
            name="ListObjectsV2",
        )

    def _call(self, call: Any) -> Any:
        from botocore.exceptions import (  # type: ignore[import-untyped, unused-ignore]
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        where = f"s3://{self.target.bucket}/{self.target.prefix}"
        try:
            return call()
        except NoCredentialsError:
            raise ListingError(
                f"no AWS credentials to list {where}: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (any values for a local emulator)"
            ) from None
        except EndpointConnectionError as exc:
            raise ListingError(
                f"cannot reach S3 to list {where}: {exc} (check --endpoint-url / AWS_ENDPOINT_URL)"
            ) from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in {"NoSuchBucket", "404"}:
                raise ListingError(
                    f"bucket '{self.target.bucket}' does not exist{self._at()}: check the bucket name in the URI"
                ) from None
            if code in {"AccessDenied", "403", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                raise ListingError(
                    f"no permission to list {where} ({code}): the credentials in use need {LIST_PERMISSION} on "
                    f"arn:aws:s3:::{self.target.bucket}"
                ) from None
            raise ListingError(f"listing {where} failed: {code}: {error.get('Message', exc)}") from None
        except BotoCoreError as exc:
            raise ListingError(f"listing {where} failed: {exc}") from None

    def _at(self) -> str:
        return f" at {self.endpoints.url}" if self.endpoints.url else ""
