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


def test_models_check_reads_a_timeout_at_a_port_with_404_as_a_timeout():
    from evolve.cli.models import hint_for
    from evolve.config import ModelConfig

    model = ModelConfig(name="openai/slow", api_base="http://127.0.0.1:40404/v1")
    hint = hint_for("APITimeoutError: Request timed out (http://127.0.0.1:40404/v1)", model)
    assert hint.startswith("no answer in time")
    assert hint_for("NotFoundError: Error code: 404", model).startswith("unknown model")
    assert hint_for("RateLimitError: Error code: 429 at 10.0.0.4:8429", model).startswith(
        "rate limited")
