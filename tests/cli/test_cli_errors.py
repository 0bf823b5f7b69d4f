"""Every CLI command answers bad input with one `error:` line and exit code 2, never a traceback.

The table enumerates, per command: a missing/non-existent workspace (or input), a value of the wrong type, and an
out-of-range value. Commands run in-process through the real entry points (`augment.cli:main`, `classify.cli:main`).
"""
from __future__ import annotations

import sys

import pytest

from augment.cli import main as augment_main
from classify.cli import main as classify_main

MISSING = "/nonexistent/workspace"


def _run(main, argv, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        main()
    out, err = capsys.readouterr()
    return exc.value.code, out, err


# (entry point, argv, text the single error line must contain)
CASES = [
    # augment prepare
    (augment_main, ["augment", "prepare", "--dataset", "folder", "--audio-dir", MISSING], "is not a directory"),
    (augment_main, ["augment", "prepare", "--dataset", "folder", "--audio-dir", ".", "--resolution", "abc"],
     "not a valid integer"),
    (augment_main, ["augment", "prepare", "--dataset", "folder", "--audio-dir", ".", "--resolution", "0"],
     "resolution"),
    (augment_main, ["augment", "prepare", "--dataset", "nosuch"], "'nosuch' is not one of"),
    # augment listen
    (augment_main, ["augment", "listen", "-w", MISSING, "--out", "x", "{ws}/data/train/a/a_train_000.png"],
     "does not exist"),
    (augment_main, ["augment", "listen", "-w", "{ws}", "--out", "x", "missing.png"], "not found"),
    (augment_main, ["augment", "listen", "--n-iter", "many", "--out", "x", "img.png"], "not a valid integer"),
    (augment_main, ["augment", "listen", "--n-iter", "0", "--out", "x", "img.png"], "n-iter"),
    # augment train
    (augment_main, ["augment", "train", "-w", MISSING, "--class", "a"], "does not exist"),
    (augment_main, ["augment", "train", "-w", MISSING, "--class", "a", "--kimg", "lots"], "not a valid float"),
    (augment_main, ["augment", "train", "-w", "{ws}", "--class", "a", "--kimg", "-3"], "--kimg"),
    (augment_main, ["augment", "train", "-w", "{ws}", "--class", "nosuch"], "unknown class"),
    # augment generate
    (augment_main, ["augment", "generate", "-w", MISSING, "--n", "5"], "does not exist"),
    (augment_main, ["augment", "generate", "-w", "{ws}", "--n", "five"], "not a valid integer"),
    (augment_main, ["augment", "generate", "-w", "{ws}", "--n", "0"], "--n"),
    (augment_main, ["augment", "generate", "-w", "{ws}", "--n", "5"], "augment train"),  # no trained model yet
    # augment check-novelty
    (augment_main, ["augment", "check-novelty", "-w", MISSING], "does not exist"),
    (augment_main, ["augment", "check-novelty", "-w", "{ws}", "--k", "few"], "not a valid integer"),
    (augment_main, ["augment", "check-novelty", "-w", "{ws}", "--k", "-1"], "k"),
    # augment pretrained
    (augment_main, ["augment", "pretrained", "fetch", "nosuch-network"], "nosuch-network"),
    (augment_main, ["augment", "pretrained", "path", "nosuch-network"], "nosuch-network"),
    # augment demo
    (augment_main, ["augment", "demo", "--workspace", "{tmp}/demo", "--resolution", "big"], "not a valid integer"),
    (augment_main, ["augment", "demo", "--workspace", "{tmp}/demo", "--resolution", "3"], "resolution"),
    # classify eval
    (classify_main, ["classify", "eval", "-w", MISSING], "does not exist"),
    (classify_main, ["classify", "eval", "-w", "{ws}", "--epochs", "ten"], "not a valid integer"),
    (classify_main, ["classify", "eval", "-w", "{ws}", "--epochs", "0"], "epochs"),
    (classify_main, ["classify", "eval", "-w", "{ws}", "--seeds", "a,b"], "seeds"),
    (classify_main, ["classify", "eval", "-w", "{ws}", "--arch", "nosuch_net"], "nosuch_net"),
    # classify baseline
    (classify_main, ["classify", "baseline", "-w", MISSING], "does not exist"),
    (classify_main, ["classify", "baseline", "-w", "{ws}", "--folds", "many"], "not a valid integer"),
    (classify_main, ["classify", "baseline", "-w", "{ws}", "--folds", "1"], "folds"),
    # unknown subcommands
    (augment_main, ["augment", "nosuch"], "No such command"),
    (classify_main, ["classify", "nosuch"], "No such command"),
]


@pytest.fixture(scope="module")
def image_ws(tmp_path_factory):
    from tests.support.workspaces import make_image_workspace

    return make_image_workspace(tmp_path_factory.mktemp("cli-ws"), classes=("a", "b"), resolution=16,
                                counts={"train": 2, "val": 1, "test": 1})


@pytest.mark.parametrize("main, argv, expected", CASES, ids=[" ".join(c[1][:3]) + f"-{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_error_line_exit_2(main, argv, expected, image_ws, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(ws=image_ws.root, tmp=tmp_path) for a in argv]
    code, out, err = _run(main, argv, capsys, monkeypatch)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("warning:", "note:"))]
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected.lower() in lines[0].lower(), lines[0]


@pytest.mark.parametrize("main, argv", [
    (augment_main, ["augment", "--help"]), (classify_main, ["classify", "--help"]),
    *[(augment_main, ["augment", c, "--help"]) for c in
      ("prepare", "listen", "demo", "train", "generate", "check-novelty", "pretrained")],
    *[(classify_main, ["classify", c, "--help"]) for c in ("eval", "baseline", "archs")],
])
def test_every_command_has_help_with_defaults(main, argv, capsys, monkeypatch):
    code, out, err = _run(main, argv, capsys, monkeypatch)
    assert code == 0 and "Usage:" in out and not err
    if argv[1] not in ("--help", "pretrained"):
        assert "[default:" in out or argv[1] == "archs", out
