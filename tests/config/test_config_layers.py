"""Configuration: defaults < file < --set, and every way a configuration can be wrong."""

from __future__ import annotations

import tomllib

import pytest

from evolve.config import ConfigError, EvolveConfig, load_config, to_toml


def write(tmp_path, text: str):
    path = tmp_path / "evolve.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file():
    cfg = load_config()
    assert cfg == EvolveConfig()
    assert cfg.problem == "circle_packing" and cfg.budget.max_programs == 100
    assert cfg.archive.url is None and cfg.operators.models == []


def test_file_overrides_defaults_and_set_overrides_file(tmp_path):
    path = write(tmp_path, """
        seed = 11
        problem = "spot_single"
        [budget]
        max_programs = 40
        max_usd = 2.5
        [islands]
        count = 2
        [[operators.models]]
        name = "openai/gpt-4.1-mini"
        temperatures = [0.2, 0.9]
        [llm.prices."openai/gpt-4.1-mini"]
        input_per_mtok = 0.4
        output_per_mtok = 1.6
    """)
    cfg = load_config(path, ["budget.max_programs=7", "islands.migration_rate=0.5",
                             'operators.use_offline="always"', "archive.url=sqlite:///x.db"])
    assert cfg.seed == 11 and cfg.problem == "spot_single"      # file
    assert cfg.budget.max_usd == 2.5 and cfg.islands.count == 2  # file, rest of section kept
    assert cfg.budget.max_programs == 7                          # --set beats file
    assert cfg.islands.migration_rate == 0.5                     # --set over a default
    assert cfg.operators.use_offline == "always"
    assert cfg.archive.url == "sqlite:///x.db"                   # unquoted text stays a string
    assert cfg.islands.migration_interval == 10                  # untouched default
    assert cfg.operators.models[0].temperatures == [0.2, 0.9]
    assert cfg.llm.prices["openai/gpt-4.1-mini"].output_per_mtok == 1.6


def test_set_values_are_typed_like_toml():
    cfg = load_config(None, ["budget.max_minutes=1.5", "novelty.enabled=false",
                             "operators.offline=['tune']", "seed=-3"])
    assert cfg.budget.max_minutes == 1.5 and cfg.novelty.enabled is False
    assert cfg.operators.offline == ["tune"] and cfg.seed == -3


def test_base_layer_sits_under_the_file(tmp_path):
    path = write(tmp_path, "seed = 5\n")
    base = {"seed": 1, "islands": {"count": 9}}
    cfg = load_config(path, ["islands.migration_rate=0.25"], base=base)
    assert cfg.seed == 5 and cfg.islands.count == 9 and cfg.islands.migration_rate == 0.25
    assert base == {"seed": 1, "islands": {"count": 9}}  # the caller's dict is left alone


def test_quoted_key_parts_may_hold_dots():
    cfg = load_config(None, ['llm.prices."openai/gpt-4.1-mini".input_per_mtok=0.4',
                             'llm.prices."openai/gpt-4.1-mini".output_per_mtok=1.6',
                             "mutation.mix.diff=0.5"])
    assert cfg.llm.prices["openai/gpt-4.1-mini"].input_per_mtok == 0.4
    assert cfg.mutation.mix["diff"] == 0.5


def test_to_toml_round_trips(tmp_path):
    cfg = load_config(None, ["budget.max_usd=3.0", "concurrency.evaluations=2",
                             "bandit.weights={'openai/m:diff' = 2.0}"])
    text = to_toml(cfg)
    tomllib.loads(text)  # valid TOML
    again = load_config(write(tmp_path, text))
    assert again == cfg


@pytest.mark.parametrize("text, overrides, expected", [
    ("[budget]\nmax_programz = 3\n", [], "unknown key 'budget.max_programz'"),
    ("colour = 'red'\n", [], "unknown key 'colour'"),
    ("", ["islands.cont=3"], "unknown key 'islands.cont'"),
    ("[budget]\nmax_programs = 'many'\n", [], "key 'budget.max_programs': expected int | None"),
    ("", ["islands.count=0"], "key 'islands.count'"),
    ("", ["sandbox.isolation=docker"], "key 'sandbox.isolation'"),
    ("[[operators.models]]\ntemperatures = [0.5]\n", [], "key 'operators.models.0.name'"),
    ("seed = 1.5\n", [], "key 'seed': expected int"),
])
def test_invalid_keys_and_types_name_the_key(tmp_path, text, overrides, expected):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), overrides)
    assert expected in str(err.value)


@pytest.mark.parametrize("override, expected", [
    ("budget.max_programs", "must look like dotted.key=value"),
    ("=5", "must look like dotted.key=value"),
    ("budget..max_programs=5", "must look like dotted.key=value"),
    ("seed.value=5", "'seed' is a value, not a section"),
    ("budget.max_usd.cap=5", "'budget.max_usd' is a value, not a section"),
    ("operators.models.0.name=x", "'operators.models' is a value, not a section"),
])
def test_bad_override_syntax(override, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(None, [override])


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(write(tmp_path, "[budget\nmax_programs = 3\n"))
