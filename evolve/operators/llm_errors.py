"""What a failed LLM call was: its error text, whether another attempt may succeed, what a
provider's retry-after asked for, and the transport's root cause under an SDK error. Shared by
the litellm and the openai SDK paths of `evolve.operators.llm`."""

from __future__ import annotations

from evolve.operators.litellm_loader import litellm_module

# HTTP statuses another attempt may get past (timeouts, conflicts, rate limits, server trouble).
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}


def root_cause(exc: BaseException) -> str:
    """What lies under an SDK error, as " (Type: text)": the SDK says only "Connection error."
    or "Request timed out."; the transport's own error names the host and what happened."""
    cause = exc
    while cause.__cause__ is not None and cause.__cause__ is not cause:
        cause = cause.__cause__
    text = str(cause).strip()
    if cause is exc or not text or text in str(exc):
        return ""
    return f" ({type(cause).__name__}: {text[:300]})"


def status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def retry_after(exc: BaseException) -> float | None:
    """Seconds from a retry-after header, if the provider sent one."""
    for holder in (getattr(exc, "response", None), exc):
        headers = getattr(holder, "headers", None) or getattr(holder, "litellm_response_headers",
                                                               None)
        if not headers:
            continue
        try:
            value = headers.get("retry-after")
            if value is not None:
                return max(0.0, float(value))
        except (TypeError, ValueError, AttributeError):
            continue
    return None


def classify_error(exc: BaseException) -> tuple[str, bool]:
    """(error text, whether another attempt may succeed)."""
    litellm = litellm_module()
    name = type(exc).__name__
    text = f"{name}: {exc}".strip()
    transient = tuple(getattr(litellm, n) for n in (
        "RateLimitError", "Timeout", "APIConnectionError", "InternalServerError",
        "ServiceUnavailableError", "BadGatewayError") if hasattr(litellm, n))
    permanent = tuple(getattr(litellm, n) for n in (
        "AuthenticationError", "PermissionDeniedError", "NotFoundError", "BadRequestError",
        "ContextWindowExceededError", "ContentPolicyViolationError", "UnprocessableEntityError")
        if hasattr(litellm, n))
    if isinstance(exc, permanent):
        return text, False
    if isinstance(exc, (*transient, TimeoutError, ConnectionError)):
        return text, True
    code = status_code(exc)
    return text, code is None or code in RETRYABLE_STATUS
