"""`augment train` input validation, defaults, --dry-run and --resume conflict detection (no training here)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from augment.cli import cli
from augment.cli_common import run_cli
from tests.support.paths import FIXTURES
from tests.support.workspaces import make_image_workspace
from tests.support.training import TINY, make_ws


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return make_ws(tmp_path_factory.mktemp("cli") / "ws")


@dataclass
class Result:
    exit_code: int
    output: str


def _invoke(*argv, env=None) -> Result:
    """`augment train ARGV` in-process exactly as the console script runs it (run_cli: one-line errors)."""
    old = sys.argv
    sys.argv = ["augment", "train", *map(str, argv)]
    code = None
    with CliRunner().isolation(env=env) as streams:
        try:
            run_cli(cli, "augment")
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.argv = old
        output = streams[-1].getvalue().decode()
    return Result(code, output)


def _one_error_line(res: Result) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.output
    return errors[0]


def _started_run(ws_root, *extra):
    """A run directory with its config.json, as `augment train` leaves it before training (no training)."""
    from augment.train_config import TrainArgs
    from augment.train_plan import plan_new, write_config
    from augment.workspace import Workspace
    from stylegan_ada.training.run_dir import create_run_dir

    ws = Workspace.load(ws_root)
    args = TrainArgs(cls="a", cfg="tiny", batch=4, tick_kimg=0.008, snap=1, metrics="none", from_="scratch",
                     device="cpu", gamma=1.0, kimg=0.064, workers=1)
    for key, value in zip(extra[::2], extra[1::2]):
        setattr(args, key, value)
    plan = plan_new(ws, args)
    plan.run_dir = create_run_dir(plan.runs_root, plan.desc)
    write_config(plan, ["test"])
    return plan.run_dir


BAD = [
    (["--class", "zzz"], "unknown class 'zzz'"),
    ([], "say what to train"),
    (["--class", "a", "--cond"], "not both"),
    (["--class", "a", "--kimg", "abc"], "'abc' is not a valid float"),
    (["--class", "a", "--kimg", "-1"], "--kimg must be"),
    (["--class", "a", "--batch", "0"], "--batch must be"),
    (["--class", "a", "--batch", "4", "--batch-gpu", "3"], "--batch-gpu 3 must divide"),
    (["--class", "a", "--gamma", "-1"], "--gamma must be"),
    (["--class", "a", "--target", "1.5"], "--target must be between 0 and 1"),
    (["--class", "a", "--p", "2"], "--p must be between 0 and 1"),
    (["--class", "a", "--snap", "0"], "--snap must be"),
    (["--class", "a", "--freezed", "-2"], "--freezed must be"),
    (["--class", "a", "--gpus", "0"], "--gpus must be"),
    (["--class", "a", "--seed", "-1"], "--seed must be"),
    (["--class", "a", "--resolution", "12"], "--resolution must be a power of two"),
    (["--class", "a", "--resolution", "64"], "--resolution must be a power of two <= the workspace's 16"),
    (["--class", "a", "--aug", "fixed"], "--aug fixed needs --p"),
    (["--class", "a", "--aug", "noaug", "--p", "0.2"], "--p has no effect"),
    (["--class", "a", "--aug", "noaug", "--target", "0.5"], "--target only applies"),
    (["--class", "a", "--aug", "sometimes"], "'sometimes' is not one of"),
    (["--class", "a", "--cfg", "huge"], "'huge' is not one of"),
    (["--class", "a", "--device", "cuda"] if not __import__("torch").cuda.is_available() else
     ["--class", "a", "--device", "tpu"], "--device"),
    (["--class", "a", "--extra-images", "/nonexistent/dir"], "is not a directory"),
    (["--cond", "--extra-images", "."], "unlabeled and cannot train a --cond model"),
    (["--class", "a", "--from", "/nonexistent/net.pkl"], "unknown pretrained network"),
    (["--class", "a", "--resume"], "no previous run of class 'a'"),
    # every numeric option against what it means, the valid range in the message (issue 11 §7)
    (["--class", "a", "--freezed", "99"], "--freezed must be between 0 and 7, got 99 (a 16 px D has 7 layers"),
    (["--class", "a", "--kimg", "0"], "--kimg must be > 0, got 0.0"),
    (["--class", "a", "--tick-kimg", "0"], "--tick-kimg must be > 0"),
    (["--class", "a", "--keep", "-1"], "--keep must be >= 0, got -1"),
    (["--class", "a", "--workers", "0"], "--workers must be between 1 and 256"),
    (["--class", "a", "--batch-gpu", "0"], "--batch-gpu must be >= 1"),
    (["--class", "a", "--seed", str(2 ** 32)], "--seed must be between 0 and 4294967295"),
    (["--class", "a", "--gpus", "65"], "--gpus must be between 1 and 64"),
    (["--class", "a", "--concurrent", "2"], "--concurrent only applies to --classes"),
    (["--class", "a", "--cuda-graphs"], "--cuda-graphs needs a CUDA device (got cpu)"),
    (["--classes", "a,zzz"], "unknown class 'zzz'"),
    (["--classes", "a,a"], "lists a class twice"),
    (["--classes", ","], "--classes must be all or a comma-separated list"),
    (["--classes", "all", "--class", "a"], "not both"),
    (["--classes", "all", "--concurrent", "0"], "--concurrent must be between 1 and 16"),
    (["--classes", "all", "--ddp"], "--ddp needs --gpus N"),
    (["--classes", "all", "--kimg", "-2"], "--kimg must be > 0"),
    (["--classes", "all", "--resume"], "no earlier `--classes` job of a, b"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a)[:40] or "nothing" for a, _ in BAD])
def test_bad_input_is_one_clear_line_and_exit_2(ws, argv, message):
    base = [a for a in TINY if a not in ("--device", "cpu")] if "--device" in argv else TINY
    res = _invoke("-w", ws.root, *base, *argv)
    line = _one_error_line(res)
    assert message in line, line


def test_missing_workspace_and_class_without_images(tmp_path):
    res = _invoke("-w", tmp_path / "nope", "--class", "a", *TINY)
    assert "does not exist" in _one_error_line(res)
    empty = make_image_workspace(tmp_path / "empty", ("a", "b"), resolution=16, counts={"train": 0, "val": 0,
                                                                                         "test": 2})
    res = _invoke("-w", empty.root, "--class", "a", *TINY)
    assert "class 'a' has no train/val images" in _one_error_line(res)


def test_test_images_are_refused_as_extra_images(ws, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(ws.images("test", "a")[0], extra / "copy.png")
    res = _invoke("-w", ws.root, "--class", "a", *TINY, "--extra-images", extra)
    assert "identical to a test file" in _one_error_line(res)


def test_from_a_network_of_another_resolution_is_refused(ws):
    res = _invoke("-w", ws.root, "--class", "a", *TINY, "--from", FIXTURES / "tiny_reference_format.pkl")
    assert "is a 32 px network but this run trains 16 px" in _one_error_line(res)


def test_missing_ffhq_file_says_how_to_get_it(tmp_path, monkeypatch):
    big = make_image_workspace(tmp_path / "ws256", ("a",), resolution=256, counts={"train": 1, "val": 1, "test": 1})
    res = _invoke("-w", big.root, "--class", "a", "--device", "cpu", env={"AUGMENT_CACHE": str(tmp_path / "cache")})
    line = _one_error_line(res)
    assert "ffhq256" in line and "https://" in line and "--from scratch" in line


def test_dry_run_prints_thesis_defaults_and_creates_nothing(ws):
    res = _invoke("-w", ws.root, "--class", "a", "--cfg", "tiny", "--device", "cpu", "--dry-run")
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.output[res.output.index("{"):])
    args, training = cfg["args"], cfg["training"]
    assert (args["kimg"], args["gamma"], args["mirror"], args["target"], args["snap"]) == (1000, 10, True, 0.7, 2)
    assert args["from_"] == "scratch"  # ffhq256 only fits 256 px runs; a note says so
    assert "note: training from scratch" in res.output
    assert training["ada_target"] == 0.7 and training["ada_kimg"] == 500 and training["kimg_per_tick"] == 4
    assert cfg["num_images"] == 5 and not (ws.root / "runs").exists()  # 4 train + 1 val of class a
    assert "warning: class 'a' has only 5 train+val image(s), fewer than the 50" in res.output
    ref = _invoke("-w", ws.root, "--class", "a", "--cfg", "tiny", "--device", "cpu", "--dry-run",
                  "--defaults", "reference")
    rcfg = json.loads(ref.output[ref.output.index("{"):])
    assert (rcfg["args"]["target"], rcfg["args"]["mirror"], rcfg["args"]["snap"]) == (0.6, False, 50)


def test_resume_refuses_conflicting_settings_unless_forced(tmp_path):
    ws = make_ws(tmp_path / "ws")
    run_dir = _started_run(ws.root)
    res = _invoke("-w", ws.root, "--class", "a", "--resume", "--gamma", "5", "--seed", "3", "--dry-run")
    line = _one_error_line(res)
    assert "--gamma 1.0 -> 5.0" in line and "--seed 0 -> 3" in line and "--force" in line
    res = _invoke("-w", ws.root, "--class", "a", "--resume", "--gamma", "5", "--force", "--dry-run")
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.output[res.output.index("{"):])
    assert cfg["training"]["gamma"] == 5 and cfg["run_dir"] == str(run_dir) and cfg["resume"]
    # --kimg (the total target), --snap and the like are free to change; the stored values are used otherwise
    res = _invoke("-w", ws.root, "--class", "a", "--resume", "--kimg", "2", "--snap", "3", "--dry-run")
    cfg = json.loads(res.output[res.output.index("{"):])
    assert cfg["training"]["total_kimg"] == 2 and cfg["training"]["snap"] == 3 and cfg["training"]["batch"] == 4
    assert cfg["training"]["compile"] is False  # off unless asked
    # the speed knobs are run-time choices: free to change on resume (--compile), refused where the device lacks them
    res = _invoke("-w", ws.root, "--class", "a", "--resume", "--compile", "--dry-run")
    assert res.exit_code == 0 and json.loads(res.output[res.output.index("{"):])["training"]["compile"] is True
    res = _invoke("-w", ws.root, "--class", "a", "--resume", "--cuda-graphs", "--dry-run")
    assert "--cuda-graphs needs a CUDA device" in _one_error_line(res)
    # the networks cannot change, even with --force
    res = _invoke("-w", ws.root, "--class", "a", "--resume", "--cfg", "auto", "--force", "--dry-run")
    assert "cannot change the network" in _one_error_line(res)


def test_a_run_being_trained_cannot_be_resumed_twice(tmp_path):
    from stylegan_ada.training.run_lock import RunLock

    ws = make_ws(tmp_path / "ws")
    run_dir = _started_run(ws.root)
    with RunLock(run_dir):
        res = _invoke("-w", ws.root, "--class", "a", "--resume")
    assert "is being trained by another process" in _one_error_line(res)


def test_help_lists_the_snap_mapping():
    out = subprocess.run([sys.executable, "-m", "augment", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "every 8 kimg" in out.stdout and "--resume" in out.stdout
