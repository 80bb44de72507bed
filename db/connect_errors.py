"""A database that cannot be opened, said in one line with what to do (not a driver traceback).

Classified by the server's SQLSTATE where the server answered (wrong password, unknown role or
database) and by the driver's text where it could not be reached at all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url

from evolve.config import url_without_password

# SQLSTATE codes (PostgreSQL, appendix A)
_INVALID_PASSWORD = "28P01"
_INVALID_AUTHORIZATION = "28000"
_UNKNOWN_DATABASE = "3D000"

PASSWORD_HINT = ("put the password in the PGPASSWORD environment variable or ~/.pgpass, or in "
                 "archive.url of your config file (it is never stored with the run)")


def redacted(url: str) -> str:
    """The URL without its password, as stored and shown."""
    return url_without_password(url)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


def explain(exc: BaseException, url: str) -> str:
    """One line: what went wrong with the database at `url`, and what to do."""
    parsed = make_url(url)
    server = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    orig: Any = getattr(exc, "orig", None) or exc
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None),
                                                        "sqlstate", None)
    text = str(orig).lower()
    user = parsed.username or "(your login name)"
    if state == _INVALID_PASSWORD or "password authentication failed" in text:
        return (f"the database server {server} refused the password of user {user}: "
                f"{PASSWORD_HINT}")
    if "no password supplied" in text or "fe_sendauth" in text:
        return f"the database server {server} wants a password for user {user}: {PASSWORD_HINT}"
    if state == _UNKNOWN_DATABASE or ("database" in text and "does not exist" in text):
        return (f"database '{parsed.database}' does not exist on {server}: create it "
                f"(`createdb -h {parsed.host or 'localhost'} -p {parsed.port or 5432} "
                f"{parsed.database}`) or fix archive.url")
    if state == _INVALID_AUTHORIZATION or ("role" in text and "does not exist" in text):
        return (f"the database server {server} has no user {user} (or does not let it in): "
                f"create it or fix the user in archive.url")
    if any(word in text for word in ("connection refused", "could not connect",
                                     "connection failed", "timeout", "timed out",
                                     "name or service not known", "no route to host",
                                     "could not translate host name")):
        return (f"cannot reach the database server {server} ({_first_line(orig)}): start it, "
                f"or fix host and port in archive.url")
    return f"cannot open the database {redacted(url)}: {_first_line(orig)}"
