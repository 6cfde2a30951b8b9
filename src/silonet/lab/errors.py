"""The lab's one error type, so the CLI prints it as one red line like every other error."""

from __future__ import annotations

from silonet.errors import SilonetError


class LabError(SilonetError):
    """The lab could not be built, inspected or torn down; the message says what and why."""

    code = "lab_error"
    template = "{message}"

    def __init__(self, message: str) -> None:
        super().__init__(message=message)
