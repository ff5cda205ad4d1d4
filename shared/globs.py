"""Path globs for include/exclude filters and routing rules.

``**`` matches any run of characters including ``/``; ``*`` and ``?`` stay within one path segment; ``[...]``
is a character class. A pattern without ``/`` is matched against the last segment only (``*.tmp`` matches
``a/b/c.tmp``), like ``.gitignore``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property


def _translate(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := pattern.find("]", i + 2)) > 0:
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class Glob:
    pattern: str

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(_translate(self.pattern), re.DOTALL)

    def matches(self, path: str) -> bool:
        target = path if "/" in self.pattern else path.rsplit("/", 1)[-1]
        return self._regex.fullmatch(target) is not None
