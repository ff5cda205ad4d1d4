"""The Labelbox API key: held so that it cannot be printed, fetched once per warm instance.

``LABELBOX_API_KEY_SECRET`` names where the key is kept; its form picks the store:

- ``arn:aws:secretsmanager:...`` → AWS Secrets Manager (the secret string, or its ``api_key`` JSON field)
- ``arn:aws:ssm:...:parameter/NAME`` or ``ssm:/NAME`` → AWS SSM Parameter Store (decrypted)
- ``projects/P/secrets/S[/versions/V]`` → Google Secret Manager
- ``https://VAULT.vault.azure.net/secrets/NAME[/VERSION]`` → Azure Key Vault
"""

from __future__ import annotations


class Secret:
    """A string that never shows itself in a repr, a str(), a log line or an exception message."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")
