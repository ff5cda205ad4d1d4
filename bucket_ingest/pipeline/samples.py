"""The sample set the demo uploads to every cloud (and the end-to-end tests check): every Labelbox media type,
the awkward names users have (spaces, '+', '%', unicode, deep prefixes), and one object for each common reason
to skip, each with the outcome the default settings give it."""

from __future__ import annotations

from dataclasses import dataclass

from shared.decision import SkipReason
from shared.media_types import MediaType

REGISTER = "register"


@dataclass(frozen=True, slots=True)
class Sample:
    key: str
    content_type: str
    expect: str  # REGISTER, or the SkipReason value the function gives
    media_type: MediaType | None = None
    size: int = 64  # bytes of content

    @property
    def data(self) -> bytes:
        """Placeholder content: the ingester never reads object bytes, only their events."""
        return (f"bucket-ingest sample: {self.key}\n".encode() * (self.size // 16 + 1))[: self.size]


SAMPLES: tuple[Sample, ...] = (
    Sample("photos/cat 1.jpg", "image/jpeg", REGISTER, MediaType.IMAGE),
    Sample("photos/c++ notes+more.png", "image/png", REGISTER, MediaType.IMAGE),
    Sample("images/diagram.bmp", "image/bmp", REGISTER, MediaType.IMAGE),
    Sample("reports/100% done.pdf", "application/pdf", REGISTER, MediaType.PDF),
    Sample("reports/%41 is not A.txt", "text/plain", REGISTER, MediaType.TEXT),
    Sample("unicode/日本語/données é.mp4", "video/mp4", REGISTER, MediaType.VIDEO),
    Sample("deep/a/b/c/d/e/f/g/h/i/interview.mp3", "audio/mpeg", REGISTER, MediaType.AUDIO),
    Sample("audio/take 2.wav", "audio/wav", REGISTER, MediaType.AUDIO),
    Sample("audio/memo.m4a", "audio/mp4", REGISTER, MediaType.AUDIO),
    Sample("pages/index.html", "text/html", REGISTER, MediaType.HTML),
    Sample("chats/support-42.json", "application/json", REGISTER, MediaType.CONVERSATIONAL),
    Sample("scans/ct 001.dcm", "application/dicom", REGISTER, MediaType.DICOM),
    Sample("empty/zero-byte.txt", "text/plain", SkipReason.ZERO_BYTE, size=0),
    Sample("folder-marker/", "application/x-directory", SkipReason.FOLDER_MARKER, size=0),
    Sample("archives/backup.zip", "application/zip", SkipReason.UNKNOWN_MEDIA_TYPE),
    Sample("notes/issue #7.txt", "text/plain", SkipReason.UNSERVABLE_KEY),
)
