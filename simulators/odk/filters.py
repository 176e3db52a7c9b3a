"""The OData `$filter` engine of the simulated Central, shared by the submissions feed and the
Entity Lists: the grammar Central accepts (comparisons, and/or/not, parentheses, null,
string/number/date literals, now() and the date-part functions, on the filterable fields
only, with its exact refusals), its SQL-like evaluation (three-valued logic, literals cast to
the column's type), and `$orderby` on the same fields.

A row is anything with the fields a filter can read (`FilterRow`): a submission, or an entity
standing in for one (see `entities_odata.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any, Protocol

from sammachip.simulators.odk.problems import ODataProblem, not_parseable

if TYPE_CHECKING:
    from sammachip.simulators.odk.store import Record


_TOKEN_RE = re.compile(
    r"""\s*(?:
      (?P<paren>[(),])
    | (?P<string>'(?:[^']|'')*')
    | (?P<datetime>\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)?)
    | (?P<date>\d{4}-\d\d-\d\d)
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<name>[$A-Za-z_][\w$]*(?:/[$A-Za-z_][\w$]*)*)
    )""",
    re.VERBOSE | re.ASCII,
)
_COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}
KEYWORDS = {"and", "or", "not", "null", "true", "false", *_COMPARE}
_ROOT = "$root/Submissions/"
FIELD_NOT_SUPPORTED = (
    "The given OData filter expression references fields not supported by this server"
)
FILTERABLE = frozenset(
    {
        "__id",
        "__system/submissionDate",
        "__system/updatedAt",
        "__system/submitterId",
        "__system/reviewState",
        "__system/deletedAt",
    }
)
BEFORE_DELETED_AT = FILTERABLE - {"__system/deletedAt"}  # Central before v2024.3
_EXTRACT = {"year", "month", "day", "hour", "minute", "second"}
_ODATA_FUNCTIONS = {
    "contains",
    "startswith",
    "endswith",
    "length",
    "indexof",
    "substring",
    "tolower",
    "toupper",
    "trim",
    "concat",
    "round",
    "floor",
    "ceiling",
    "date",
    "time",
    "totaloffsetminutes",
    "fractionalseconds",
    "maxdatetime",
    "mindatetime",
    "totalseconds",
    "cast",
    "isof",
    "geo.distance",
    "geo.intersects",
    "geo.length",
    "matchespattern",
}
_ARITHMETIC = {"add", "sub", "mul", "div", "divby", "mod", "has", "in"}

Expr = tuple[Any, ...]  # a filter syntax tree: ("cmp", "gt", left, right), ("field", name), …


class FilterRow(Protocol):
    """What a filter reads of a row, by the submissions feed's names: `__id`, and
    `__system/{submissionDate, updatedAt, submitterId, reviewState, deletedAt}`."""

    @property
    def root_id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime | None: ...
    @property
    def submitter_id(self) -> int | None: ...
    @property
    def review_state(self) -> str | None: ...
    @property
    def deleted_at(self) -> datetime | None: ...


@dataclass
class Token:
    """One lexeme of a filter expression and where it starts (Central's errors name it)."""

    kind: str
    text: str
    at: int


def _tokens(expression: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(expression):
        if expression[pos:].strip() == "":
            break
        match = _TOKEN_RE.match(expression, pos)
        if match is None or match.end() == pos:
            raise not_parseable(f"unexpected character at {pos}")
        kind = match.lastgroup or "name"
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


class FilterParser:
    """Recursive descent over Central's subset: comparisons, and/or/not, parentheses, null,
    string/number/date literals, now() and the date-part functions, filterable fields only.
    The Entity Lists' filter is a subclass: it names its own fields and refusals."""

    def __init__(self, expression: str, subtable: bool, filterable: frozenset[str]) -> None:
        self.tokens, self.i, self.subtable = _tokens(expression), 0, subtable
        self.filterable = filterable

    def parse(self) -> Expr:
        if not self.tokens:
            raise not_parseable("empty expression")
        node = self.or_expr()
        if self.i < len(self.tokens):
            token = self.tokens[self.i]
            if token.text in _ARITHMETIC:
                raise self.unsupported(token, "ArithmeticExpression")
            raise not_parseable(f"unexpected '{token.text}' at {token.at}")
        return node

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise not_parseable("unexpected end of expression")
        self.i += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.kind in ("name", "paren") and token.text == text:
            self.i += 1
            return True
        return False

    @staticmethod
    def unsupported(token: Token, kind: str) -> ODataProblem:
        return ODataProblem(
            501.4,
            "The given OData filter expression uses features not supported by this server: "
            f'{kind} at {token.at} ("{token.text}")',
        )

    def or_expr(self) -> Expr:
        node = self.and_expr()
        while self.accept("or"):
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> Expr:
        node = self.not_expr()
        while self.accept("and"):
            node = ("and", node, self.not_expr())
        return node

    def not_expr(self) -> Expr:
        if self.accept("not"):
            return ("not", self.not_expr())
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.operand()
        token = self.peek()
        if token is not None and token.kind == "name" and token.text in _COMPARE:
            self.i += 1
            return ("cmp", token.text, left, self.operand())
        if token is not None and token.text in _ARITHMETIC:
            raise self.unsupported(token, "ArithmeticExpression")
        if left[0] in ("or", "and", "not", "cmp"):
            return left
        raise not_parseable("expected a comparison")

    def operand(self) -> Expr:
        token = self.take()
        if token.text == "(":
            node = self.or_expr()
            if not self.accept(")"):
                raise not_parseable(f"missing ')' for '(' at {token.at}")
            return node
        if token.kind == "string":
            return ("lit", token.text[1:-1].replace("''", "'"))
        if token.kind == "datetime":
            return ("lit", _datetime_literal(token.text))
        if token.kind == "date":
            return ("lit", datetime.combine(date.fromisoformat(token.text), time(), UTC))
        if token.kind == "number":
            return (
                "lit",
                float(token.text) if re.search(r"[.eE]", token.text) else int(token.text),
            )
        if token.kind == "name":
            return self.name(token)
        raise not_parseable(f"unexpected '{token.text}' at {token.at}")

    def name(self, token: Token) -> Expr:
        text = token.text
        if text in ("null", "true", "false"):
            return ("lit", {"null": None, "true": True, "false": False}[text])
        if text in KEYWORDS:
            raise not_parseable(f"unexpected '{text}' at {token.at}")
        if self.accept("("):
            return self.call(token)
        field_name = text.removeprefix(_ROOT)
        rooted = text.startswith(_ROOT)
        if field_name not in self.filterable or (self.subtable and not rooted):
            raise ODataProblem(501.5, f"{FIELD_NOT_SUPPORTED}: {text} at {token.at}")
        return ("field", field_name)

    def call(self, token: Token) -> Expr:
        fn = token.text.lower()
        if fn in _ODATA_FUNCTIONS:
            raise self.unsupported(token, "MethodCallExpression")
        if fn not in _EXTRACT and fn != "now":
            raise not_parseable(f"unknown function '{token.text}' at {token.at}")
        args = []
        if not self.accept(")"):
            args.append(self.operand())
            if not self.accept(")"):
                raise not_parseable(f"missing ')' for {token.text} at {token.at}")
        if len(args) != (0 if fn == "now" else 1):
            raise not_parseable(f"wrong number of arguments for {token.text}")
        return ("call", fn, *args)


def _datetime_literal(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    # Central hands zone-less literals to PostgreSQL, whose session zone is UTC in Docker.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def parse_filter(
    expression: str, *, subtable: bool = False, filterable: frozenset[str] = FILTERABLE
) -> Expr:
    return FilterParser(expression, subtable, filterable).parse()


def mentions_deleted(node: Expr) -> bool:
    if node[0] == "field":
        return node[1] == "__system/deletedAt"
    return any(mentions_deleted(n) for n in node[1:] if isinstance(n, tuple))


def _field_value(record: FilterRow, name: str) -> Any:
    return {
        "__id": record.root_id,
        "__system/submissionDate": record.created_at,
        "__system/updatedAt": record.updated_at,
        "__system/submitterId": record.submitter_id,
        "__system/reviewState": record.review_state,
        "__system/deletedAt": record.deleted_at,
    }[name]


def _value(node: Expr, record: FilterRow, now: datetime) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "field":
        return _field_value(record, node[1])
    if kind == "call":
        if node[1] == "now":
            return now
        inner = _value(node[2], record, now)
        if inner is None:
            return None
        if not isinstance(inner, datetime):
            raise not_parseable(f"{node[1]}() needs a date")
        return getattr(inner, node[1])
    return truth(node, record, now)


def _coerce(a: Any, b: Any) -> tuple[Any, Any]:
    """What PostgreSQL would compare: text literals cast to the column's type."""
    try:
        if isinstance(a, datetime) and isinstance(b, str):
            return a, _datetime_literal(b)
        if isinstance(b, datetime) and isinstance(a, str):
            return _datetime_literal(a), b
    except ValueError:
        raise not_parseable(f"not a timestamp: {b if isinstance(b, str) else a}") from None
    if isinstance(a, int) and isinstance(b, str) and b.lstrip("-").isdigit():
        return a, int(b)
    if isinstance(b, int) and isinstance(a, str) and a.lstrip("-").isdigit():
        return int(a), b
    if type(a) is not type(b) and not (isinstance(a, int | float) and isinstance(b, int | float)):
        raise not_parseable(f"cannot compare {a!r} with {b!r}")
    return a, b


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def truth(node: Expr, record: FilterRow, now: datetime) -> bool | None:
    """SQL three-valued logic: None is 'unknown' and a WHERE keeps only True."""
    kind = node[0]
    if kind == "not":
        inner = truth(node[1], record, now)
        return None if inner is None else not inner
    if kind in ("and", "or"):
        left, right = truth(node[1], record, now), truth(node[2], record, now)
        if kind == "and":
            return False if False in (left, right) else (None if None in (left, right) else True)
        return True if True in (left, right) else (None if None in (left, right) else False)
    if kind == "cmp":
        op, left_node, right_node = node[1], node[2], node[3]
        left, right = _value(left_node, record, now), _value(right_node, record, now)
        if op in ("eq", "ne") and (right_node == ("lit", None) or left_node == ("lit", None)):
            is_null = (left if right_node == ("lit", None) else right) is None
            return is_null if op == "eq" else not is_null  # `eq null` is IS NULL
        if left is None or right is None:
            return None
        return _OPS[op](*_coerce(left, right))
    value = _value(node, record, now)
    return None if value is None else bool(value)


def order_by(records: list[Record], orderby: str | None) -> list[Record]:
    """Newest first by default; `$orderby` on filterable fields (asc: nulls first, desc: nulls
    last, ties by submission id)."""
    if not orderby:
        return records[::-1]
    ordered = sorted(records, key=lambda r: r.seq)
    for term in reversed([t.strip() for t in orderby.split(",") if t.strip()]):
        name, _, direction = term.partition(" ")
        name, direction = name.removeprefix(_ROOT), direction.strip().lower() or "asc"
        if name not in FILTERABLE or direction not in ("asc", "desc"):
            raise ODataProblem(501.5, f"{FIELD_NOT_SUPPORTED}: {term} at 0")
        # null sorts lowest: first ascending, last once reversed (Python's sort stays stable)
        ordered.sort(
            key=lambda r, n=name: (0, 0) if (v := _field_value(r, n)) is None else (1, v),
            reverse=direction == "desc",
        )
    return ordered
