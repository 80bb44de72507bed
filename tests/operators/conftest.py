from tests.support.llm_server import scripted_llm_server  # noqa: F401 - pytest fixture
