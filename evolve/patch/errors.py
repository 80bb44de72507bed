"""The one error every step from an LLM reply to a child program raises."""

from __future__ import annotations


class MutationError(Exception):
    """A reply that gives no usable program. `kind` is a short tag stored with the program;
    `message` is written for the model (it is fed back when the proposal is resampled)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message
