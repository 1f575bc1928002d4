"""The one regular expression engine bank templates run on: RE2, linear in the text's length.

An admin types template patterns in the console, so a pattern must never make the parser run
forever: RE2 has no backtracking (a pattern like ``(a+)+b`` takes linear time on any text),
refuses back-references and look-arounds outright, and caps the memory a compiled pattern may
take (:data:`MAX_MEM_BYTES`). Shared by the API (intake) and the console (template editor).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import re2

from domain.bank_messages import CompiledPattern, TemplateError

#: The most memory one compiled pattern may take; a larger program is refused.
MAX_MEM_BYTES: Final = 1 << 20


class _Re2Pattern:
    def __init__(self, regexp: re2._Regexp) -> None:
        self._regexp = regexp

    def search(self, text: str) -> Mapping[str, str | None] | None:
        match = self._regexp.search(text)
        return None if match is None else match.groupdict()


class Re2Engine:
    """:class:`domain.bank_messages.RegexEngine` on RE2."""

    def compile(self, pattern: str) -> CompiledPattern:
        options = re2.Options()
        options.max_mem = MAX_MEM_BYTES
        options.log_errors = False
        try:
            return _Re2Pattern(re2.compile(pattern, options))
        except re2.error as exc:
            raise TemplateError(f"pattern refused: {exc}") from None


ENGINE: Final = Re2Engine()
