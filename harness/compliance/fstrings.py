"""Read Python 3.12 f-strings on older interpreters: rewrite each f-string as a concatenation.

Python 3.12 (PEP 701) lets an f-string reuse its own quotes inside replacement fields
(f"{", ".join(xs)}"); records written for 3.12 do, and older parsers reject them. When a file does not
parse, the scanner retries with every f-string rewritten as ("text" + str(expr) + ...), which keeps
what the scanner needs (the names and strings in the expressions) and every line number (newlines are
kept where they were). Format specs and conversions are dropped: they do not change what a value
depends on.
"""

from __future__ import annotations

import re

_PREFIX = re.compile(r"(?i)(?<![\w.])(rf|fr|f|rb|br|r|b|u)?('''|\"\"\"|'|\")")


class _Unsupported(Exception):
    pass


def downlevel(source: str) -> str | None:
    """The source with f-strings rewritten, or None when the text is not something this can handle."""
    try:
        return _Rewriter(source).code(0, len(source), stop=None)[0]
    except (_Unsupported, IndexError):
        return None


class _Rewriter:
    def __init__(self, source: str) -> None:
        self.s = source

    def code(self, pos: int, end: int, stop: str | None) -> tuple[str, int]:
        """Copy code from pos, rewriting f-strings, until `stop` at bracket depth 0 (inside a
        replacement field) or `end`. Returns (text, position after the copied code)."""
        s, out, depth = self.s, [], 0
        while pos < end:
            char = s[pos]
            if stop is not None and depth == 0 and char in stop:
                if not (char == "!" and s.startswith("!=", pos)) and not (char == "=" and (s.startswith("==", pos) or s[pos - 1] in "=!<>")):
                    return "".join(out), pos
            if char == "#" and stop is None:
                newline = s.find("\n", pos)
                newline = end if newline < 0 else newline
                out.append(s[pos:newline])
                pos = newline
                continue
            match = _PREFIX.match(s, pos)
            if match and (pos == 0 or not (s[pos - 1].isalnum() or s[pos - 1] == "_")):
                prefix, quote = (match.group(1) or ""), match.group(2)
                start = match.end()
                if "f" in prefix.lower():
                    text, pos = self.fstring(start, prefix.lower().replace("f", ""), quote)
                else:
                    pos = self.skip_string(start, quote, raw="r" in prefix.lower())
                    text = s[match.start():pos]
                out.append(text)
                continue
            if char in "([{":
                depth += 1
            elif char in ")]}":
                depth -= 1
                if depth < 0 and stop is not None:
                    raise _Unsupported("unbalanced brackets in a replacement field")
            out.append(char)
            pos += 1
        if stop is not None:
            raise _Unsupported("replacement field not closed")
        return "".join(out), pos

    def skip_string(self, pos: int, quote: str, raw: bool) -> int:
        s = self.s
        while pos < len(s):
            if s.startswith(quote, pos):
                return pos + len(quote)
            if s[pos] == "\\":
                pos += 2
                continue
            if s[pos] == "\n" and len(quote) == 1:
                raise _Unsupported("unterminated string")
            pos += 1
        raise _Unsupported("unterminated string")

    def fstring(self, pos: int, plain_prefix: str, quote: str) -> tuple[str, int]:
        """Rewrite the f-string whose body starts at pos; returns (replacement, position after it)."""
        s, parts, literal = self.s, [], []
        raw = "r" in plain_prefix
        while True:
            if pos >= len(s):
                raise _Unsupported("unterminated f-string")
            if s.startswith(quote, pos):
                pos += len(quote)
                break
            char = s[pos]
            if char == "\\" and not raw:
                literal.append(s[pos:pos + 2])
                pos += 2
            elif char in "{}" and s.startswith(char * 2, pos):
                literal.append(char)
                pos += 2
            elif char == "{":
                if literal:
                    parts.append(self.literal("".join(literal), plain_prefix, quote))
                    literal = []
                expression, pos = self.field(pos + 1, quote)
                parts.append(expression)
            else:
                literal.append(char)
                pos += 1
        if literal:
            parts.append(self.literal("".join(literal), plain_prefix, quote))
        return "(" + (" + ".join(parts) if parts else "''") + ")", pos

    def field(self, pos: int, quote: str) -> tuple[str, int]:
        """A replacement field after its `{`: returns ('str(expr)', position after the closing `}`)."""
        expression, pos = self.code(pos, len(self.s), stop="}!:=")
        pieces = [f"str({expression})"]
        if self.s[pos] == "=":  # {x=} prints "x=" and the value
            pieces.insert(0, repr(expression.strip() + "="))
            pos += 1
        if self.s[pos] == "!":
            pos += 2
        if self.s[pos] == ":":  # a format spec may hold nested fields; keep their expressions
            pos += 1
            while self.s[pos] != "}":
                if self.s[pos] == "{":
                    nested, pos = self.field(pos + 1, quote)
                    pieces.append(nested)
                else:
                    pos += 1
        if self.s[pos] != "}":
            raise _Unsupported("replacement field not closed")
        return " + ".join(pieces), pos + 1

    @staticmethod
    def literal(text: str, plain_prefix: str, quote: str) -> str:
        if len(quote) == 1 and quote in text:
            quote = '"' if quote == "'" else "'"
        return f"{plain_prefix}{quote}{text}{quote}"
