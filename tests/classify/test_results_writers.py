"""classify/results.py's writers against hand-written expected output: run numbering and ids, the summary.csv row,
append_summary (header of older files, lock), the markdown table and write_table's md/csv/json."""
from __future__ import annotations

import fcntl
import json

import classify.results as results
from classify.results import (aggregate, append_summary, interval, next_run_number, run_id, summary_row,
                              table_markdown, write_table)

FOOTNOTE = ("Macro-averaged precision, recall and F1; mean ± sample sd over seeds. 95 % CI of F1: (t) Student-t over "
            "seeds (≥ 3), (bootstrap) stratified bootstrap over the clips of that split for a single run; '-' for 2 "
            "seeds. Paired differences between arms: `classify compare`.")
HEADER = ("run_id,created,kind,train,test,arch,mode,pretrained,seed,n_train,n_val,n_test,lr,best_epoch,val_macro_f1,"
          "val_accuracy,test_macro_f1,test_accuracy,test_macro_precision,test_macro_recall,seconds,code_version")


def _raw(path) -> str:
    """The file's text with its line endings as written (read_text would turn \r\n into \n)."""
    return path.read_bytes().decode("utf-8")


def test_next_run_number_counts_runs_being_written_and_only_five_digit_prefixes(tmp_path):
    assert next_run_number(tmp_path) == 0
    (tmp_path / "00003-cnn-seed0").mkdir()
    (tmp_path / ".00007-cnn-seed1.partial").mkdir()   # still being written: its number is taken
    for name in ("000011-x", "123-x", "x00050-y", "00060x", "..00070-z", "summary.csv"):
        (tmp_path / name).write_text("")
    assert next_run_number(tmp_path) == 8


def test_run_id_pads_the_number_to_five_digits_and_joins_the_parts():
    assert run_id(7, "cnn", "seed0") == "00007-cnn-seed0"
    assert run_id(123456, 3) == "123456-3"
    assert run_id(0) == "00000-"


def test_summary_row_formats_every_field():
    metrics = {"run_id": "00004-cnn-seed1", "created": "2026-12-01T10:00:00", "train": "real", "test_source": "gan",
               "arch": "cnn", "mode": "head", "pretrained": "imagenet", "seed": 1, "n_train": 700, "n_val": 100,
               "n_test": 90, "lr": 0.000125, "best_epoch": 7, "val": {"macro_f1": 0.51234, "accuracy": 0.001},
               "test": {"macro_f1": 0.0004567, "accuracy": 0.0, "macro_precision": 0.8, "macro_recall": 0.7},
               "seconds": 12.34, "code_version": "abc123"}
    assert summary_row(metrics, "musicnn") == {
        "run_id": "00004-cnn-seed1", "created": "2026-12-01T10:00:00", "kind": "musicnn", "train": "real",
        "test": "gan", "arch": "cnn", "mode": "head", "pretrained": "imagenet", "seed": 1, "n_train": 700,
        "n_val": 100, "n_test": 90, "lr": "0.000125", "best_epoch": 7, "val_macro_f1": "0.5123",
        "val_accuracy": "0.0010", "test_macro_f1": "0.0004567", "test_accuracy": "0.0000",
        "test_macro_precision": "0.8000", "test_macro_recall": "0.7000", "seconds": "12.3", "code_version": "abc123"}


def test_summary_row_of_a_minimal_run_leaves_the_missing_fields_empty():
    metrics = {"run_id": "r", "train": "real", "arch": "cnn", "val": None, "lr": -0.5,
               "test": {"macro_f1": 0.5, "accuracy": 1}}
    assert summary_row(metrics) == {
        "run_id": "r", "created": "", "kind": "cnn", "train": "real", "test": "real", "arch": "cnn", "mode": "",
        "pretrained": "", "seed": "", "n_train": "", "n_val": "", "n_test": "", "lr": "-0.5000", "best_epoch": "",
        "val_macro_f1": "", "val_accuracy": "", "test_macro_f1": "0.5000", "test_accuracy": "1",
        "test_macro_precision": "", "test_macro_recall": "", "seconds": "", "code_version": ""}


def _row(run: str, **extra) -> dict:
    return {"run_id": run, "train": "real", "arch": "cnn", "test_macro_f1": "0.5000", **extra}


def test_append_summary_creates_the_file_with_every_column_in_order(tmp_path):
    results_dir = tmp_path / "ws" / "results"            # not there yet: created
    append_summary(results_dir, [_row("00000-a", seed=0, ignored_key="x")])
    path = append_summary(results_dir, [_row("00001-b", mode="head")])
    assert path == results_dir / "summary.csv"
    assert _raw(path) == (
        HEADER + "\n"
        "00000-a,,,real,,cnn,,,0,,,,,,,,0.5000,,,,,\n"
        "00001-b,,,real,,cnn,head,,,,,,,,,,0.5000,,,,,\n")


def test_append_summary_keeps_the_columns_and_rows_of_an_older_file(tmp_path):
    # a quoted value with a line break inside survives the rewrite byte for byte
    (tmp_path / "summary.csv").write_bytes('run_id,note,train\n00000-old,"kept é\r\nline 2",gan\n'.encode())
    append_summary(tmp_path, [_row("00001-new", note="n2")])
    assert _raw(tmp_path / "summary.csv") == (
        HEADER + ",note\n"
        '00000-old,,,gan,,,,,,,,,,,,,,,,,,,"kept é\r\nline 2"\n'
        "00001-new,,,real,,cnn,,,,,,,,,,,0.5000,,,,,,n2\n")


def test_append_summary_to_an_empty_file_writes_the_header(tmp_path):
    (tmp_path / "summary.csv").write_text("")
    append_summary(tmp_path, [_row("00000-a")])
    assert _raw(tmp_path / "summary.csv") == HEADER + "\n00000-a,,,real,,cnn,,,,,,,,,,,0.5000,,,,,\n"


def test_append_summary_holds_an_exclusive_lock_while_it_rewrites_the_file(tmp_path, monkeypatch):
    lock = tmp_path / ".summary.lock"
    seen = []
    write = results.atomic_write_text

    def probing_write(path, text):
        with open(lock, "a") as other:                   # another open file: conflicts with a held flock
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                seen.append("locked")
            else:
                seen.append("free")
                fcntl.flock(other, fcntl.LOCK_UN)
        write(path, text)

    monkeypatch.setattr(results, "atomic_write_text", probing_write)
    append_summary(tmp_path, [_row("00000-a")])
    append_summary(tmp_path, [_row("00001-b")])          # the first call released the lock
    assert seen == ["locked", "locked"]
    with open(lock, "a") as other:                       # and released it after the last call too
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert (tmp_path / "summary.csv").read_text().count("\n") == 3


def test_table_markdown_by_hand():
    rows = [
        {"train": "real", "arch": "cnn", "mode": "", "pretrained": "", "split": "test", "n": 3,
         "accuracy": 0.5, "accuracy_sd": 0.125, "macro_precision": 0.25, "macro_precision_sd": 0.0,
         "macro_recall": 0.75, "macro_recall_sd": 0.02, "macro_f1": 0.4, "macro_f1_sd": 0.1,
         "macro_f1_ci95": [0.1234, 0.5678], "macro_f1_ci_method": "t"},
        {"train": "gan", "arch": "resnet18", "mode": "head", "pretrained": "imagenet", "split": "val", "n": 2,
         "accuracy": 0.9, "accuracy_sd": 0.01, "macro_precision": 0.8, "macro_precision_sd": 0.3,
         "macro_recall": 0.7, "macro_recall_sd": 0.2, "macro_f1": 0.6, "macro_f1_sd": 0.05,
         "macro_f1_ci95": None, "macro_f1_ci_method": "none"},
    ]
    assert table_markdown(rows, "Q1 results") == "\n".join([
        "# Q1 results", "",
        "| Train | Model | Mode | Weights | Split | Accuracy | Precision | Recall | F1 | F1 95 % CI | Seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        "| real | cnn | - | - | test | 0.50 ± 0.12 | 0.25 ± 0.00 | 0.75 ± 0.02 | 0.40 ± 0.10 | [0.12, 0.57] (t) | 3 |",
        "| gan | resnet18 | head | imagenet | val | 0.90 ± 0.01 | 0.80 ± 0.30 | 0.70 ± 0.20 | 0.60 ± 0.05 | - | 2 |",
        "", FOOTNOTE, ""])


def _scores(acc, prec, rec, f1, **extra):
    return {"accuracy": acc, "macro_precision": prec, "macro_recall": rec, "macro_f1": f1, **extra}


def test_write_table_writes_markdown_csv_and_json_by_hand(tmp_path):
    runs = [
        {"run_id": "00000-a", "train": "real", "arch": "cnn", "mode": "head", "pretrained": "", "seed": 0,
         "val": _scores(0.5, 0.25, 0.75, 0.5), "test": _scores(0.6, 0.5, 0.3, 0.4, macro_f1_ci95=[0.3, 0.5])},
        {"run_id": "00001-b", "train": "real+gan", "arm": "gan", "arch": "resnet18", "pretrained": "imagenet",
         "seed": 1, "test": _scores(0.5, 0.25, 0.4, 0.3)},
        {"run_id": "00002-c", "train": "real+gan", "arm": "gan", "arch": "resnet18", "pretrained": "imagenet",
         "seed": 2, "test": _scores(0.7, 0.75, 0.4, 0.5)},
    ]
    paths = write_table(tmp_path, "q1", runs, "Q1")
    tables = tmp_path / "tables"
    assert paths == {"md": tables / "q1.md", "csv": tables / "q1.csv", "json": tables / "q1.json"}
    assert sorted(p.name for p in tables.iterdir()) == ["q1.csv", "q1.json", "q1.md"]
    assert _raw(paths["md"]) == "\n".join([
        "# Q1", "",
        "| Train | Model | Mode | Weights | Split | Accuracy | Precision | Recall | F1 | F1 95 % CI | Seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        "| real | cnn | head | - | val | 0.50 ± 0.00 | 0.25 ± 0.00 | 0.75 ± 0.00 | 0.50 ± 0.00 | - | 1 |",
        "| real | cnn | head | - | test | 0.60 ± 0.00 | 0.50 ± 0.00 | 0.30 ± 0.00 | 0.40 ± 0.00 "
        "| [0.30, 0.50] (bootstrap) | 1 |",
        "| gan | resnet18 | - | imagenet | test | 0.60 ± 0.14 | 0.50 ± 0.35 | 0.40 ± 0.00 | 0.40 ± 0.14 | - | 2 |",
        "", FOOTNOTE, ""])
    assert _raw(paths["csv"]) == (
        "train,arch,mode,pretrained,split,n,"
        "accuracy,accuracy_sd,accuracy_ci_low,accuracy_ci_high,accuracy_ci_method,"
        "macro_precision,macro_precision_sd,macro_precision_ci_low,macro_precision_ci_high,macro_precision_ci_method,"
        "macro_recall,macro_recall_sd,macro_recall_ci_low,macro_recall_ci_high,macro_recall_ci_method,"
        "macro_f1,macro_f1_sd,macro_f1_ci_low,macro_f1_ci_high,macro_f1_ci_method\n"
        "real,cnn,head,,val,1,0.5000,0.0000,,,none,0.2500,0.0000,,,none,0.7500,0.0000,,,none,0.5000,0.0000,,,none\n"
        "real,cnn,head,,test,1,0.6000,0.0000,,,none,0.5000,0.0000,,,none,0.3000,0.0000,,,none,"
        "0.4000,0.0000,0.3000,0.5000,bootstrap\n"
        "gan,resnet18,,imagenet,test,2,0.6000,0.1414,,,none,0.5000,0.3536,,,none,0.4000,0.0000,,,none,"
        "0.4000,0.1414,,,none\n")
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc["title"] == "Q1" and doc["runs"] == ["00000-a", "00001-b", "00002-c"]
    assert [(r["train"], r["split"], r["n"], r["seeds"]) for r in doc["rows"]] == [
        ("real", "val", 1, [0]), ("real", "test", 1, [0]), ("gan", "test", 2, [1, 2])]
    assert doc["rows"][1]["macro_f1_ci95"] == [0.3, 0.5] and doc["rows"][1]["macro_f1_ci_method"] == "bootstrap"
    assert set(doc) == {"title", "rows", "runs"}


def test_a_two_seed_group_has_no_interval_even_when_each_run_has_its_bootstrap():
    # every run's val/test entry carries its own bootstrap CI (classify/clip_scores.py); neither is the group's
    runs = [{"run_id": f"0000{i}", "train": "real", "arch": "cnn", "seed": i,
             "test": _scores(0.5, 0.5, 0.5, 0.4 + 0.1 * i, macro_f1_ci95=[0.1 * i, 0.9])} for i in range(2)]
    assert interval(runs, "test") == (None, "none")
    (row,) = aggregate(runs)
    assert row["macro_f1_ci95"] is None and row["macro_f1_ci_method"] == "none"


def test_interval_defaults_to_macro_f1():
    run = {"test": _scores(0.5, 0.5, 0.5, 0.4, macro_f1_ci95=[0.1, 0.2], accuracy_ci95=[0.7, 0.8])}
    assert interval([run], "test") == ([0.1, 0.2], "bootstrap")


def test_runs_without_mode_or_weights_keys_group_with_empty_ones():
    old = {"run_id": "00000-old", "train": "real", "arch": "cnn", "seed": 0, "test": _scores(0.5, 0.5, 0.5, 0.5)}
    new = {**old, "run_id": "00001-new", "seed": 1, "mode": "", "pretrained": ""}
    (row,) = aggregate([old, new])
    assert (row["mode"], row["pretrained"], row["n"], row["seeds"]) == ("", "", 2, [0, 1])
