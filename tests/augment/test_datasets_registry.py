"""The dataset registry: `augment prepare`'s --dataset choices and per-dataset options come from the kinds' modules."""
from __future__ import annotations

import sys
import types

import pytest

from augment import datasets
from augment.datasets.base import DatasetSpec
from augment.datasets.kind import DatasetKind, DatasetOption, merged_options

# what each kind takes on the command line, written out by hand (protocols.md / README): the independent truth
TAKES = {
    "soundtracks360": {"--audio-dir", "--ratings", "--target", "--thresholds"},
    "panda4q": {"--audio-dir", "--annotations", "--protocol"},
    "folder": {"--audio-dir"},
    "csv": {"--manifest"},
    "images": {"--image-dir"},
}
ALL_FLAGS = set().union(*TAKES.values())
VALUE = {"--target": "valence", "--protocol": "full", "--thresholds": "3,5"}


def test_registry_declares_what_each_kind_takes():
    assert [k.name for k in datasets.dataset_kinds()] == list(TAKES)
    assert {k.name: {o.flag for o in k.options} for k in datasets.dataset_kinds()} == TAKES


def test_cli_offers_the_registry():
    from augment.commands.prepare import prepare

    params = {p.opts[0]: p for p in prepare.params}
    assert list(params["--dataset"].type.choices) == list(TAKES)
    assert ALL_FLAGS <= set(params)
    assert list(params["--target"].type.choices) == ["emotions", "valence", "energy", "tension"]
    assert list(params["--protocol"].type.choices) == ["small", "full"]
    assert "soundtracks360:" in params["--audio-dir"].help and "panda4q:" in params["--audio-dir"].help


@pytest.mark.parametrize("kind, flag", [(k, f) for k in TAKES for f in sorted(ALL_FLAGS - TAKES[k])])
def test_an_option_of_another_kind_is_one_line_error(tmp_path, augment_cli, kind, flag):
    r = augment_cli("prepare", "--dataset", kind, flag, VALUE.get(flag, tmp_path / "x"), "-w", tmp_path / "ws")
    assert r.exit_code == 2, r.output
    assert f"error: {flag} do(es) not apply to --dataset {kind}; see `augment prepare --help`" in r.stderr
    assert not (tmp_path / "ws").exists()


def test_bad_thresholds_text_is_one_line_error(tmp_path, augment_cli):
    r = augment_cli("prepare", "--dataset", "soundtracks360", "--audio-dir", tmp_path, "--ratings", __file__,
                    "--target", "valence", "--thresholds", "3;5", "-w", tmp_path / "ws")
    assert r.exit_code == 2 and "--thresholds must be LOW,HIGH (e.g. 3,5), got '3;5'" in r.stderr


def test_a_new_kind_is_one_module(monkeypatch):
    built = []

    def build(opts):
        built.append(opts)
        return "spec"  # type: ignore[return-value]

    module = types.ModuleType("fake_kind")
    module.DATASET = DatasetKind(name="fake", summary="x", input="audio", build=build, test_size="1",
                                 options=(DatasetOption("--fake-dir", "a folder", type="dir"),))
    monkeypatch.setitem(sys.modules, "fake_kind", module)
    monkeypatch.setitem(datasets.KINDS, "fake", "fake_kind")
    assert datasets.build_dataset("fake", {"fake_dir": "d"}) == "spec" and built == [{"fake_dir": "d"}]
    assert "--fake-dir" in [o.flag for o in merged_options(datasets.dataset_kinds())]
    with pytest.raises(ValueError, match="unknown dataset kind 'nope'"):
        datasets.build_dataset("nope", {})


def test_disagreeing_declarations_of_one_flag_are_refused():
    def kind(name, type_):
        return DatasetKind(name=name, summary="", input="audio", build=lambda o: DatasetSpec, test_size="1",
                           options=(DatasetOption("--audio-dir", "x", type=type_),))
    with pytest.raises(ValueError, match="declare --audio-dir differently"):
        merged_options([kind("a", "dir"), kind("b", "file")])
    with pytest.raises(ValueError, match="bad dataset option"):
        DatasetOption("--x", "x", type="choice")
