"""The command line: every command says what it reads, writes and takes; --params before or after it."""

from __future__ import annotations

import pytest

from huishou.cli import COMMANDS, main

from conftest import ROOT


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_help_says_what_it_reads_and_writes(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: huishou {command}" in text
    assert "reads:" in text and "writes:" in text and "--params" in text


def test_score_help_lists_its_options(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = capsys.readouterr().out
    for option in ("--snapshot", "--model-path", "--alias", "--engine", "--scheduler"):
        assert option in text


@pytest.mark.parametrize("where", ["before", "after"])
def test_params_is_accepted_before_or_after_the_command(where, tmp_path, capsys):
    missing = str(tmp_path / "elsewhere.yaml")
    argv = ["--params", missing, "validate"] if where == "before" else ["validate", "--params", missing]
    assert main(argv) == 2
    assert f"huishou validate: error: {missing}: not found" in capsys.readouterr().err


def test_params_after_the_command_wins_over_the_default(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no params.yaml here: only the explicit path can work
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["promote", "--params", str(ROOT / "params.yaml"), "--version", "99"]) == 2
    err = capsys.readouterr().err
    assert "huishou promote: error: registry" in err and "has no version 99" in err


def test_version_names_the_package_version(capsys):
    import huishou

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"huishou {huishou.__version__}"
