"""The command line (issue 19 item 8), through ``fastnn.__main__.main`` in this process."""
import builtins
import re

import pytest

import fastnn
from fastnn.__main__ import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"fastnn {fastnn.__version__}\n"
    assert main(["-V"]) == 0


def test_unknown_command_is_named(capsys):
    assert main(["trian"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'trian'" in err and "train, sweep, config, bench" in err


def test_help_says_fastnn_and_every_default(capsys):
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    assert "python -m fastnn train" not in top and "fastnn train" in top
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: fastnn train")
    options = re.findall(r"^  (--[a-z-]+)", text, flags=re.M)
    assert set(options) >= {"--dataset", "--data-path", "--sizes", "--epochs",
                            "--mini-batch-size", "--eta", "--dtype", "--threads", "--seed",
                            "--save"}
    # each option's help names its default
    flat = re.sub(r"\s+", " ", text)
    for opt, default in (("--sizes", "784,30,10"), ("--epochs", "30"),
                         ("--mini-batch-size", "10"), ("--eta", "3.0"), ("--dtype", "float64"),
                         ("--dataset", "fashion-mnist"), ("--threads", "None"),
                         ("--seed", "None"), ("--save", "None"), ("--data-path", "None")):
        assert re.search(re.escape(opt) + r" .*?\(default: " + re.escape(default) + r"\)",
                         flat), opt
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert capsys.readouterr().out.startswith("usage: fastnn sweep")


def test_sweep_without_its_extra_names_it(monkeypatch, capsys):
    real_import = builtins.__import__

    def no_yaml(name, *args, **kwargs):
        if name == "yaml" or name.startswith("sklearn"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_yaml)
    monkeypatch.delitem(__import__("sys").modules, "fastnn.sweep", raising=False)
    monkeypatch.delitem(__import__("sys").modules, "fastnn.sklearn", raising=False)
    code = main(["sweep", "--grid", "hidden=4", "--epochs", "1", "--dataset", "sample",
                 "--train-size", "20", "--test-size", "10", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "pip install 'fastnn[sweep]'" in err


def test_train_draws_the_bar_on_a_terminal(monkeypatch):
    """fastnn train on a terminal: the live bar during each epoch, the book's line over it at
    the end; the engine call gets the counter only for the length of the command."""
    import io
    import sys

    from fastnn import _core

    class Tty(io.StringIO):
        encoding = "utf-8"

        def isatty(self):
            return True

    out = Tty()
    monkeypatch.setattr(sys, "stdout", out)
    real = _core.train
    assert main(["train", "--dataset", "sample", "--epochs", "2", "--sizes", "784,8,10",
                 "--seed", "0"]) == 0
    assert _core.train is real
    text = out.getvalue()
    screen = [re.sub(r"\x1b\[[0-9;]*[mK]", "", l).split("\r")[-1] for l in text.split("\n")]
    epochs = [l for l in screen if l.startswith("Epoch ")]
    assert [l.split(":")[0] for l in epochs] == ["Epoch 0", "Epoch 1"]
    assert re.match(r"^Epoch 0: \d+ / 1000$", epochs[0])
    # the bar (drawn or not in so short a run) is always cleared before the book's line
    assert "\r\x1b[KEpoch 0: " in text
