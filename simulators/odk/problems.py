"""What the simulated Central refuses, and how it says so: its problem codes and messages."""

from __future__ import annotations


class ODataProblem(Exception):
    """A request Central refuses: HTTP status and its problem code and message."""

    def __init__(self, code: float, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.headers = code, message, headers or {}

    @property
    def status(self) -> int:
        return int(self.code)


def not_supported(feature: str) -> ODataProblem:
    return ODataProblem(501.1, f"The requested feature {feature} is not supported by this server.")


def not_acceptable(allowed: str) -> ODataProblem:
    return ODataProblem(406.1, f"Requested format not acceptable; this resource allows: {allowed}.")


def not_parseable(reason: str) -> ODataProblem:
    return ODataProblem(
        400.18, f"The OData filter expression you provided could not be parsed: {reason}"
    )


NOT_FOUND = ODataProblem(404.1, "Could not find the resource you were looking for.")
AUTH_FAILED = ODataProblem(401.2, "Could not authenticate with the provided credentials.")
FORBIDDEN = ODataProblem(
    403.1, "The authentication you provided does not have rights to perform that action."
)
