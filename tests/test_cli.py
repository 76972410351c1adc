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


def _actions(command: str):
    import argparse

    from huishou.cli import parser

    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]._actions


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_argument_has_help_and_every_command_its_exit_codes(command, capsys):
    undocumented = [a.dest for a in _actions(command) if not a.help]
    assert not undocumented, f"{command}: arguments without help: {undocumented}"
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exit codes: 0 done" in text and "2 bad input" in text and "75 another run" in text
    assert f"logs/{command}.json" in text
    if command == "score":
        assert "4 nothing to score" in text and "3 a PSI crossed" in text


def test_top_level_help_is_for_users(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "make repro" in text and "huishou score" in text and "--json" in text and "exit codes:" in text
    assert "argument parsing" not in text  # not the module's developer docstring


@pytest.mark.parametrize("as_json", [False, True])
def test_a_command_prints_one_line_or_its_whole_summary_as_json(as_json, tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.setenv("HUISHOU_LOGS", str(tmp_path / "logs"))
    out = tmp_path / "page.html"
    argv = ["--params", str(ROOT / "params.yaml"), *(["--json"] if as_json else []), "plots-template", "--out"]
    assert main([*argv, str(out)]) == 0
    printed = capsys.readouterr().out
    saved = json.loads((tmp_path / "logs" / "plots-template.json").read_text())
    assert saved == {"template": str(out), "bytes": out.stat().st_size}
    if as_json:
        assert json.loads(printed) == saved
    else:
        assert printed.count("\n") == 1 and len(printed) < 300
        assert printed.startswith("huishou plots-template: done in ") and f"bytes {saved['bytes']}" in printed
        assert f"summary in {tmp_path / 'logs' / 'plots-template.json'}" in printed


def test_one_line_picks_the_headline_keys_and_drops_long_values():
    from huishou.cli import one_line

    result = {"valid_lightgbm_auc": 0.86371, "model_version": "7", "noise": "x" * 500, "valid_logistic_auc": 0.8}
    line = one_line("train", result, 12.34, None)
    assert line == "huishou train: done in 12.3 s; valid_lightgbm_auc 0.8637, valid_logistic_auc 0.8, model_version 7"
    nested = {"closed_loop": {"loop_collections_uplift_vs_strongest": 0.101}, "by_stage": {"x": 1}}
    assert "closed_loop.loop_collections_uplift_vs_strongest 0.101" in one_line("evaluate-strategy", nested, 1.0, None)


def test_progress_off_a_terminal_is_one_line_per_step(monkeypatch, capsys):
    from huishou.core.progress import LineProgress, progress_bar

    monkeypatch.delenv("HUISHOU_PROGRESS", raising=False)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    bar = progress_bar(total=3, desc="train", unit="step")  # pytest's stderr is no terminal
    assert isinstance(bar, LineProgress)
    for step in ("lightgbm", "logistic", "scorecard"):
        bar.set_postfix_str(step)  # the running step is named before its work
        bar.update()
    bar.close()
    for day in progress_bar(["2026-01-01", "2026-01-02"], desc="evaluate strategy", unit="day"):
        assert day
    err = capsys.readouterr().err
    assert "\r" not in err
    assert err.splitlines()[:4] == [
        "train [1/3 step, 0 s] lightgbm",
        "train [2/3 step, 0 s] logistic",
        "train [3/3 step, 0 s] scorecard",
        "train [3/3 step, 0 s] done",
    ]
    assert "evaluate strategy [2/2 day, 0 s] 2026-01-02" in err
    ticks = progress_bar(total=1000, desc="loop", unit="day")  # unnamed ticks: not a line each
    for _ in range(1000):
        ticks.update()
    ticks.close()
    assert len(capsys.readouterr().err.splitlines()) <= 3
