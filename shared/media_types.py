"""Labelbox media types, from the object's extension or, failing that, its content type.

Formats per Labelbox's import specs (https://docs.labelbox.com/reference/import-image-data and the video,
audio, text, document, HTML and conversational pages): IMAGE is JPG/PNG/BMP, VIDEO MP4, AUDIO MP3/WAV/M4A,
TEXT UTF-8 text, PDF, HTML, CONVERSATIONAL a JSON conversation; DICOM is a listed data type. Anything else is
skipped with its reason unless ``INGEST_MEDIA_TYPES`` adds it or ``INGEST_UNKNOWN_MEDIA=register`` lets
Labelbox infer the type.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class MediaType(StrEnum):
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    AUDIO = "AUDIO"
    TEXT = "TEXT"
    PDF = "PDF"
    HTML = "HTML"
    CONVERSATIONAL = "CONVERSATIONAL"
    DICOM = "DICOM"


BY_EXTENSION: Mapping[str, MediaType] = {
    "jpg": MediaType.IMAGE,
    "jpeg": MediaType.IMAGE,
    "png": MediaType.IMAGE,
    "bmp": MediaType.IMAGE,
    "mp4": MediaType.VIDEO,
    "mp3": MediaType.AUDIO,
    "wav": MediaType.AUDIO,
    "m4a": MediaType.AUDIO,
    "txt": MediaType.TEXT,
    "pdf": MediaType.PDF,
    "html": MediaType.HTML,
    "htm": MediaType.HTML,
    "json": MediaType.CONVERSATIONAL,
    "dcm": MediaType.DICOM,
}

BY_CONTENT_TYPE: Mapping[str, MediaType] = {
    "image/jpeg": MediaType.IMAGE,
    "image/png": MediaType.IMAGE,
    "image/bmp": MediaType.IMAGE,
    "video/mp4": MediaType.VIDEO,
    "audio/mpeg": MediaType.AUDIO,
    "audio/wav": MediaType.AUDIO,
    "audio/x-wav": MediaType.AUDIO,
    "audio/wave": MediaType.AUDIO,
    "audio/mp4": MediaType.AUDIO,
    "audio/x-m4a": MediaType.AUDIO,
    "text/plain": MediaType.TEXT,
    "application/pdf": MediaType.PDF,
    "text/html": MediaType.HTML,
    "application/dicom": MediaType.DICOM,
}


def extension_of(key: str) -> str:
    """The lower-case extension of the key's last path segment, without the dot ('' when there is none)."""
    stem, dot, extension = key[key.rfind("/") + 1 :].rpartition(".")
    return extension.lower() if dot and stem else ""


def media_type_of(
    key: str,
    content_type: str | None,
    extra_extensions: Mapping[str, MediaType | None] | None = None,
) -> MediaType | None:
    """The media type, or None when neither the extension nor the content type is known.

    ``extra_extensions`` (from settings) overrides the table; a None value there means "never register".
    """
    extension = extension_of(key)
    if extra_extensions and extension in extra_extensions:
        return extra_extensions[extension]
    if extension in BY_EXTENSION:
        return BY_EXTENSION[extension]
    if content_type:
        return BY_CONTENT_TYPE.get(content_type.split(";", 1)[0].strip().lower())
    return None
