"""The table `ser predict` prints tells its rows apart, and the exit code says when nothing was predicted."""
from __future__ import annotations

import pandas as pd
from rich.console import Console

from ser import EMOTIONS
from ser.predict import PROB_COLUMNS, display_paths, exit_code, failed_files, files_table, table_rows

ROOT = "/home/someone/data/../shared/corpora/ravdess/Audio_Speech_Actors_01-24"
FILES = [f"{ROOT}/Actor_01/03-01-05-01-02-01-01.wav", f"{ROOT}/Actor_01/03-01-05-01-02-02-01.wav",
         f"{ROOT}/Actor_02/03-01-05-01-02-01-02.wav"]


def frame(paths, errors):
    rows = []
    for p, e in zip(paths, errors):
        probs = dict.fromkeys(PROB_COLUMNS, None) if e else {c: (0.7 if i == 0 else 0.05)
                                                              for i, c in enumerate(PROB_COLUMNS)}
        rows.append({"path": p, "emotion": None if e else "angry", "confidence": None if e else 0.7, **probs,
                     "error": e})
    return pd.DataFrame(rows)


def test_labels_drop_the_shared_folder_and_keep_the_file_name():
    assert display_paths(FILES) == ["Actor_01/03-01-05-01-02-01-01.wav", "Actor_01/03-01-05-01-02-02-01.wav",
                                    "Actor_02/03-01-05-01-02-01-02.wav"]


def test_long_labels_are_cut_from_the_left():
    labels = display_paths([f"{ROOT}/a/{'x' * 60}_01.wav", f"{ROOT}/b/{'x' * 60}_02.wav"], max_width=30)
    assert [len(s) for s in labels] == [30, 30]
    assert labels[0].startswith("…") and labels[0].endswith("_01.wav") and labels[1].endswith("_02.wav")


def test_one_file_keeps_its_folder():
    assert display_paths([FILES[2]]) == ["Actor_02/03-01-05-01-02-01-02.wav"]


def test_printed_table_shows_every_file_name_whole_on_a_narrow_terminal():
    df = frame(FILES, ["", "", "could not decode"])
    console = Console(width=80, record=True, file=open("/dev/null", "w"))
    console.print(files_table(df, "predictions (svc)"))
    text = console.export_text()
    for label in display_paths(FILES):
        assert label in text
    assert "Actor_02/03-01-05-01-02-01-02.wav: could not decode" in text
    rows = table_rows(df)
    assert rows[2][1] == "error" and rows[2][-1] == "could not decode" and rows[0][1] == "angry"
    assert len(rows[0]) == 4 + len(EMOTIONS) and rows[0][-1] == ""


def test_exit_code_is_1_only_when_every_file_failed():
    assert exit_code(frame(FILES, ["bad header", "empty", "too short"])) == 1
    assert failed_files(frame(FILES, ["bad header", "", "too short"])) == (2, 3)
    assert exit_code(frame(FILES, ["bad header", "", "too short"])) == 0
    assert exit_code(frame(FILES, ["", "", ""])) == 0
    # a timeline: several windows of one file count as one file
    windows = frame([FILES[0]] * 4 + [FILES[1]], ["", "", "", "", "empty"])
    assert failed_files(windows) == (1, 2) and exit_code(windows) == 0
