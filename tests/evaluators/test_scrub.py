"""Secrets of the run's environment are found afresh after every evaluation: a variable set,
changed or removed while the run goes on is seen at the next one."""

from evaluators.scrub import marker, scrub, secrets_in


def test_a_secret_set_or_changed_later_is_still_scrubbed(monkeypatch):
    monkeypatch.setenv("EVOLVE_TEST_API_KEY", "first-secret-value")
    assert secrets_in()["first-secret-value"] == "EVOLVE_TEST_API_KEY"
    monkeypatch.setenv("EVOLVE_TEST_API_KEY", "second-secret-value")
    found = secrets_in()
    assert "first-secret-value" not in found
    assert scrub("printed second-secret-value", found) == \
        f"printed {marker('EVOLVE_TEST_API_KEY')}"
    monkeypatch.delenv("EVOLVE_TEST_API_KEY")
    assert "second-secret-value" not in secrets_in()


def test_only_secret_looking_names_count():
    environ = {"MY_TOKEN_FILE": "abcdefgh", "HOME": "/home/someone", "DB_PASSWORD": "short",
               "service_key": "lowercase-name-value"}
    assert secrets_in(environ) == {"lowercase-name-value": "service_key",
                                   "abcdefgh": "MY_TOKEN_FILE"}
