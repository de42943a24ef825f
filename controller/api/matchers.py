"""Label matchers in Alertmanager's semantics: the syntax users write (part of the API), pure.

`name=value`, `name!=value`, `name=~regex`, `name!~regex`, written as Alertmanager's
classic parser reads them (pkg/labels/parse.go): an optional pair of double quotes around
the value, `\\"`, `\\n` and `\\\\` escapes inside, whitespace around each token dropped.
A regular expression is RE2 (the `re2` module, the same engine family as Go's regexp, so a
pattern means here what it means to Alertmanager: no backreferences or lookaround) and is
anchored at both ends, `^(?:regex)$`. A label the alert does not carry is the empty string,
so `team=""` matches an alert without `team` and `team!=""` requires one.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing

import re2

EQUAL, NOT_EQUAL, REGEX, NOT_REGEX = "=", "!=", "=~", "!~"
OPERATORS = (REGEX, EQUAL, NOT_EQUAL, NOT_REGEX)
# Alertmanager's classic matcher syntax: a Prometheus label name, an operator ('=~' before
# '=' so that '=~' is not read as '=' and a value starting with '~'), then the value.
_SHAPE = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*$", re.DOTALL)
LABEL_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
# The same shape as a CEL twin for the API server (values are checked further by the models).
CEL_SHAPE = r"^\\s*[a-zA-Z_:][a-zA-Z0-9_:]*\\s*(=~|=|!=|!~)\\s*\\S"
MAX_LENGTH = 256


class MatcherError(ValueError):
    """A matcher that cannot be read; the text says which and why."""


@dataclasses.dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: typing.Mapping[str, str]) -> bool:
        seen = labels.get(self.name, "")  # a missing label is the empty string
        if self.op == EQUAL:
            return seen == self.value
        if self.op == NOT_EQUAL:
            return seen != self.value
        found = _holds(self.value, seen)
        return found if self.op == REGEX else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


# RE2's memory for one compiled pattern (its default is 8 MiB): compiling grows with the
# program, and `\pL{400}` (9 characters) took 0.2-0.6 s of CPU at the default, on the event
# loop. At 256 KiB the largest pattern compiles in ~20 ms and a larger one is refused at once
# ("pattern too large"); Go's regexp (Alertmanager) has no such bound, so `\pL{16}` is refused
# here and accepted there (docs/alerting.md).
MAX_PROGRAM_MEMORY = 256 << 10
# The RE2 instructions all of one policy's distinct regexes may take (a typical pattern: 10-200):
# with MAX_PROGRAM_MEMORY it bounds what validating one policy's regexes costs (~0.2 s at worst).
MAX_PROGRAM_PER_POLICY = 100_000


def _options() -> typing.Any:
    options = re2.Options()
    options.log_errors = False  # the error is ours to report, not RE2's to print on stderr
    options.max_mem = MAX_PROGRAM_MEMORY
    return options


# Compiled patterns kept: each may hold up to MAX_PROGRAM_MEMORY, so 256 of them at most 64 MiB
# of the operator's memory; matching answers are remembered apart (_holds), so a pattern
# evicted here is compiled again only for a label value not seen with it before.
@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> typing.Any:
    """The pattern anchored as Alertmanager anchors it. RE2 runs in time linear in the
    label's length, so a pattern a tenant writes cannot stall evaluation (no backtracking)."""
    try:
        return re2.compile(f"^(?:{pattern})$", _options())
    except re2.error as error:
        reason = error.args[0].decode(errors="replace") if error.args and isinstance(error.args[0], bytes) else error
        raise MatcherError(f"invalid regular expression {pattern!r}: {reason}") from None


@functools.lru_cache(maxsize=16384)
def _holds(pattern: str, value: str) -> bool:
    """Remembered: an evaluation asks the same few patterns about the same label values
    (services, severities, teams) once per rule and route."""
    return _compiled(pattern).fullmatch(value) is not None


def new(name: str, op: str, value: str, compile_regex: bool = True) -> Matcher:
    """A matcher from its parts, checked: a label name, a known operator, a regex RE2 reads
    (unless `compile_regex` is False: the caller compiles them within a budget, RegexBudget)."""
    if not LABEL_NAME.match(name):
        raise MatcherError(f"invalid label name {name!r}: letters, digits, '_' and ':', not starting with a digit")
    if op not in OPERATORS:
        raise MatcherError(f"unknown matcher operator {op!r}: one of =, !=, =~, !~")
    if op in (REGEX, NOT_REGEX) and compile_regex:
        _compiled(value)
    return Matcher(name, op, value)


class RegexBudget:
    """Compiles one policy's regexes while their RE2 programs fit MAX_PROGRAM_PER_POLICY."""

    def __init__(self, limit: int = MAX_PROGRAM_PER_POLICY) -> None:
        self.limit, self.used, self.seen = limit, 0, set[str]()

    def add(self, pattern: str) -> None:
        if pattern in self.seen:
            return
        self.seen.add(pattern)
        compiled = _compiled(pattern)
        self.used += max(compiled.programsize, 0) + max(compiled.reverseprogramsize, 0)
        if self.used > self.limit:
            raise MatcherError(f"regular expression {pattern!r}: the policy's regexes exceed {self.limit} RE2 "
                               "instructions in all (large counted repetitions of classes such as \\pL cost most)")


def parse(text: str, compile_regex: bool = True) -> Matcher:
    """One matcher, `name<op>value` (the value optionally in double quotes)."""
    if len(text) > MAX_LENGTH:
        raise MatcherError(f"matcher longer than {MAX_LENGTH} characters")
    found = _SHAPE.match(text)
    if found is None:
        raise MatcherError(f"bad matcher format: {text} (write name=value, name!=value, name=~regex or name!~regex)")
    name, op, raw = found.groups()
    if raw == "":
        raise MatcherError(f"matcher value is not present: {text}")
    return new(name, op, _unquote(raw), compile_regex)


def _unquote(raw: str) -> str:
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    out: list[str] = []
    escaped = False
    closed = False
    for index, char in enumerate(body):
        if escaped:
            escaped = False
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(char, "\\" + char))  # a stray '\' is literal
            continue
        if char == "\\" and index < len(body) - 1:
            escaped = True
        elif char == "\\":
            out.append("\\")
        elif char == '"':
            if not quoted or index < len(body) - 1:
                raise MatcherError(f"matcher value contains unescaped double quote: {raw}")
            closed = True
        else:
            out.append(char)
    if quoted and not closed:
        raise MatcherError(f"matcher value contains unescaped double quote: {raw}")
    return "".join(out)


def parse_set(text: str, compile_regex: bool = True) -> list[Matcher]:
    """Several matchers as Alertmanager's `ParseMatchers` reads them: `{a="1", b!~"x.*"}`,
    braces optional, separated by commas outside double quotes."""
    if text.startswith("{"):
        text = text[1:]
    if text.endswith("}"):
        text = text[:-1]
    tokens: list[str] = []
    token: list[str] = []
    inside, escaped = False, False
    for char in text:
        if char == "," and not inside:
            tokens.append("".join(token))
            token = []
            continue
        if char == '"':
            if not escaped:
                inside = not inside
            escaped = False
        elif char == "\\":
            escaped = not escaped
        else:
            escaped = False
        token.append(char)
    if "".join(token).strip():
        tokens.append("".join(token).strip())
    return [parse(t, compile_regex) for t in tokens]


def parse_all(texts: typing.Iterable[str], compile_regex: bool = True) -> list[Matcher]:
    """A route's or silence's `matchers`: each item one matcher, or a `{...}` set of them."""
    out: list[Matcher] = []
    for text in texts:
        out += parse_set(text, compile_regex) if text.lstrip().startswith("{") else [parse(text, compile_regex)]
    return out


def match_all(matchers: typing.Iterable[Matcher], labels: typing.Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def equality(pairs: typing.Mapping[str, str]) -> list[Matcher]:
    """The legacy `match: {label: value}` maps, as equality matchers (no name check: those
    maps were accepted with any key and must keep meaning what they meant)."""
    return [Matcher(name, EQUAL, value) for name, value in pairs.items()]
