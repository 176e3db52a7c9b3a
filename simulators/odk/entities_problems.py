"""What the simulated Central refuses about Entity Lists, in its own problem codes and words
(the recorded exchanges' bodies), and the name and uuid rules behind them."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sammachip.simulators.odk.problems import ODataProblem


class EntityProblem(ODataProblem):
    """A refusal with Central's problem code, message and (when Central sends them) details."""

    def __init__(self, code: float, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(code, message)
        self.details = details


NOT_FOUND = EntityProblem(404.1, "Could not find the resource you were looking for.")
FORBIDDEN = EntityProblem(
    403.1, "The authentication you provided does not have rights to perform that action."
)


def unexpected(field_name: str, value: Any, reason: str) -> EntityProblem:
    shown = ",".join(map(str, value)) if isinstance(value, list) else value  # JS toString
    return EntityProblem(
        400.8,
        f"Unexpected {field_name} value {shown}; {reason}",
        {"field": field_name, "value": value, "reason": reason},
    )


def exists(table: str, fields: list[str], values: list[Any]) -> EntityProblem:
    return EntityProblem(
        409.3,
        f"A resource already exists with {','.join(fields)} value(s) of "
        f"{','.join(map(str, values))}.",
        {"fields": fields, "values": values, "table": table},
    )


def not_string(name: str, expected: str = "string") -> EntityProblem:
    return EntityProblem(
        400.11,
        f"Invalid input data type: expected ({name}) to be ({expected})",
        {"field": name, "expected": expected},
    )


def invalid_entity(reason: str) -> EntityProblem:
    return EntityProblem(400.28, f"The entity is invalid. {reason}", {"reason": reason})


def missing(name: str) -> EntityProblem:
    return EntityProblem(400.2, f"Required parameter {name} missing.", {"field": name})


def is_name(name: Any, *, period: bool) -> bool:
    """Central's `/^(?!__)[\\p{L}:_][\\p{L}\\d.\\-_:]*$/u` (datasets: no period). A Thai word
    fails on its vowel and tone marks, which are not letters (\\p{M})."""
    if not isinstance(name, str) or not name or name.startswith("__"):
        return False

    def letter(c: str) -> bool:
        return unicodedata.category(c).startswith("L") or c in ":_"

    tail = "-_:" + ("." if period else "")
    return letter(name[0]) and all(
        letter(c) or (c.isascii() and c.isdigit()) or c in tail for c in name[1:]
    )


UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def normalise_uuid(raw: Any) -> str:
    """Central strips a `uuid:` prefix and lower-cases; anything but a v4 UUID is refused."""
    text = raw.removeprefix("uuid:").lower() if isinstance(raw, str) else ""
    if not UUID4.fullmatch(text):
        raise not_string("uuid", "valid version 4 UUID")
    return text
