"""``autophagy check TARGET`` from the command line: the rules passed, or one line and exit 2."""

from __future__ import annotations

LEAKY = "test_testing:LeakyModel"
"""A model whose state_dict forgets its spread (tests/test_testing.py; tests/ is on sys.path
through its conftest)."""


def test_a_builtin_passes_and_lists_its_rules(cli):
    result = cli("check", "gmm", "--option", "n_components=2")
    assert result.exit_code == 0, result.output
    assert "model gmm:" in result.output and "ok  state round-trip" in result.output


def test_a_broken_plugin_fails_in_one_line_naming_the_rule(cli):
    result = cli("check", LEAKY)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "LeakyModel: state round-trip:" in lines[0]


def test_an_option_that_is_not_key_value_is_refused(cli):
    result = cli("check", "gmm", "--option", "n_components")
    assert result.exit_code == 2 and "--option" in result.output
