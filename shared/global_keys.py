"""Global keys: one object location → one Labelbox global key → one data row.

Labelbox global keys are unique per organisation, compared case-insensitively, at most 200 characters, from
letters, digits, space and ``! _ . * ' ( ) & $ @ = ; / : + , ? -``, with no leading or trailing space
(https://docs.labelbox.com/reference/data-row-global-keys). Object keys are case-sensitive, up to 1,024 bytes
of any UTF-8. The scheme:

- **Plain** ``CLOUD:BUCKET/KEY`` (Azure: ``azure:ACCOUNT/CONTAINER/BLOB``) when that text is already a valid
  key that no other location can collide with: allowed ASCII only, no upper-case letter, no ``?``, at most 200
  characters, no trailing space. Bucket names cannot contain ``/``, so the text names exactly one location, and
  being lower-case, it equals another plain key case-insensitively only if it is the same location.
- **Hashed** ``READABLE?DIGEST`` otherwise: READABLE is the plain text with each disallowed character made
  ``_`` and cut to fit; DIGEST is 24 lower-case hex digits (96 bits) of SHA-256 over the exact location. Only
  hashed keys contain ``?``, so a hashed key never equals a plain one; two hashed keys are equal only if their
  digests are, that is, only for the same location.

The key depends on the location alone: an overwrite updates the same row, and the version (S3 version id, GCS
generation) goes to metadata. The live path and backfill compute the same key.
"""

from __future__ import annotations

import hashlib
import re
import string

from shared.uris import ObjectLocation

MAX_LENGTH = 200
DIGEST_MARK = "?"
DIGEST_LENGTH = 24
PUNCTUATION = " !_.*'()&$@=;/:+,?-"
ALLOWED_CHARACTERS = frozenset(string.ascii_letters + string.digits + PUNCTUATION)
_READABLE_ROOM = MAX_LENGTH - len(DIGEST_MARK) - DIGEST_LENGTH
_READABLE_PUNCTUATION = re.escape(PUNCTUATION.replace(DIGEST_MARK, ""))
_VALID = re.compile(rf"[A-Za-z0-9{re.escape(PUNCTUATION)}]{{1,{MAX_LENGTH}}}")
_PLAIN = re.compile(rf"[a-z0-9{_READABLE_PUNCTUATION}]{{1,{MAX_LENGTH}}}")  # no upper case, no digest mark
_NOT_READABLE = re.compile(rf"[^A-Za-z0-9{_READABLE_PUNCTUATION}]")


def readable_path(location: ObjectLocation) -> str:
    """``CLOUD:BUCKET/KEY`` (Azure: ``azure:ACCOUNT/CONTAINER/BLOB``): also the row's external id."""
    account = f"{location.account}/" if location.account else ""
    return f"{location.cloud}:{account}{location.bucket}/{location.key}"


def global_key(location: ObjectLocation, readable: str | None = None) -> str:
    """The location's global key; ``readable`` is its ``readable_path`` when the caller has it already."""
    text = readable or readable_path(location)
    if _PLAIN.fullmatch(text) and not text.endswith(" "):
        return text
    readable = _NOT_READABLE.sub("_", text)
    return f"{readable[:_READABLE_ROOM]}{DIGEST_MARK}{_digest(location)}"


def is_valid_global_key(key: str) -> bool:
    """Whether Labelbox accepts ``key`` as a global key (length, characters, no edge spaces)."""
    return _VALID.fullmatch(key) is not None and key == key.strip(" ")


def _digest(location: ObjectLocation) -> str:
    # NUL cannot occur in cloud, account or bucket names, so this encoding is unambiguous.
    canonical = "\0".join((location.cloud, location.account or "", location.bucket, location.key))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST_LENGTH]
