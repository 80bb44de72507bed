"""The fix named for a model's failure reads the error's kind, not digits inside its address
(CI once got "check the API key" for a refused connection to port 43401)."""

from __future__ import annotations

import pytest

from evolve.engine.model_health import fix_for

BASE = "http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize("port", [43401, 40123, 44037, 40403, 41404, 404])
def test_a_refused_connection_names_the_server_whatever_its_port(port):
    base = BASE.format(port=port)
    error = (f"APITimeoutError: Request timed out. (ConnectionRefusedError: Cannot connect to "
             f"host 127.0.0.1:{port} ssl:default [{base}])")
    assert fix_for("openai/down", error, base).startswith(f"check that the server at {base}")


@pytest.mark.parametrize("error", ["AuthenticationError: Error code: 401 - invalid key",
                                   "PermissionDeniedError: Error code: 403"])
def test_status_codes_of_their_own_still_name_the_key(error):
    assert fix_for("openai/m", error, BASE.format(port=43404)).startswith("check the API key")


def test_a_missing_model_names_the_model_name_even_behind_a_port_with_401():
    error = "NotFoundError: Error code: 404 - model x at http://127.0.0.1:40401/v1 not found"
    assert fix_for("openai/x", error, None).startswith("check the model name")
