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


def test_long_labels_keep_the_tail_and_the_file_name_whole():
    assert display_paths(FILES, max_width=30) == ["…/03-01-05-01-02-01-01.wav", "…/03-01-05-01-02-02-01.wav",
                                                  "…/03-01-05-01-02-01-02.wav"]
    long = [f"{ROOT}/a/{'x' * 60}_01.wav", f"{ROOT}/b/{'x' * 60}_02.wav"]
    assert display_paths(long, max_width=30) == [f"{'x' * 60}_01.wav", f"{'x' * 60}_02.wav"]  # wider, not cut


def test_the_same_file_name_in_two_folders_keeps_the_folder_that_differs():
    paths = [f"{ROOT}/session_1/speaker_a/take/x.wav", f"{ROOT}/session_2/speaker_a/take/x.wav",
             f"{ROOT}/session_2/speaker_a/take/y.wav"]
    assert display_paths(paths, max_width=12) == ["session_1/…/take/x.wav", "session_2/…/take/x.wav", "…/take/y.wav"]
    assert display_paths(paths[:2] * 2, max_width=12) == ["session_1/…/take/x.wav", "session_2/…/take/x.wav"] * 2


def test_one_file_keeps_its_folder():
    assert display_paths([FILES[2]]) == ["Actor_02/03-01-05-01-02-01-02.wav"]


MIXED = [*FILES, "/data/corpora/tess/TESS Toronto emotional speech set data/OAF_angry/OAF_back_angry.wav",
         "/data/corpora/emodb/wav/03a01Fa.wav", "/data/mine/session_1/speaker_a/take/x.wav",
         "/data/mine/session_2/speaker_a/take/x.wav"]


def render(df: pd.DataFrame, width: int) -> list[str]:
    import io

    console = Console(width=width, record=True, file=io.StringIO())
    console.print(files_table(df, "predictions (svc)"))
    return console.export_text().splitlines()


def rendered_labels(lines: list[str], paths: list[str]) -> list[str]:
    """The file cell of each printed row (rows in the frame's order), checked to end with its file's name."""
    header = next(i for i, line in enumerate(lines) if "emotion" in line)
    end = lines[header].index("emotion")
    rows = lines[header + 2: header + 2 + len(paths)]
    labels = [row[:end].strip() for row in rows]
    for label, path in zip(labels, paths):
        assert label.endswith("/" + path.rsplit("/", 1)[-1]) or label == path.rsplit("/", 1)[-1], (label, path)
    return labels


def test_printed_table_fits_80_columns_and_shows_every_file_name_whole():
    df = frame(MIXED, ["", "", "could not decode", "", "", "", ""])
    lines = render(df, 80)
    assert max(len(line) for line in lines) <= 80
    labels = rendered_labels(lines, MIXED)
    assert len(set(labels)) == len(MIXED)  # unambiguous
    assert labels == ["…/Actor_01/03-01-05-01-02-01-01.wav", "…/Actor_01/03-01-05-01-02-02-01.wav",
                      "…/Actor_02/03-01-05-01-02-01-02.wav", "…/OAF_angry/OAF_back_angry.wav",
                      "data/corpora/emodb/wav/03a01Fa.wav", "…/mine/session_1/speaker_a/take/x.wav",
                      "…/mine/session_2/speaker_a/take/x.wav"]
    header = next(line for line in lines if "emotion" in line).split()
    assert header == ["file", "emotion", "conf", *(e[:3] for e in EMOTIONS)]  # every probability still shown ...
    assert "predictions (svc) (in %)" in lines[0]  # ... in whole percents, to leave the labels room
    assert lines[4].split()[1:] == ["angry", "70", "70", "5", "5", "5", "5", "5", "5"]
    assert "…/Actor_02/03-01-05-01-02-01-02.wav: could not decode" in "\n".join(lines)
    lines = render(frame(FILES, ["", "", "could not decode"]), 80)  # shorter labels: two decimals fit
    assert max(len(line) for line in lines) <= 80 and "(in %)" not in lines[0]
    assert rendered_labels(lines, FILES) == ["…/03-01-05-01-02-01-01.wav", "…/03-01-05-01-02-02-01.wav",
                                             "…/03-01-05-01-02-01-02.wav"]
    assert lines[4].split()[1:] == ["angry", "0.70", "0.70", *["0.05"] * 6]


def test_narrower_terminals_trade_probabilities_for_the_file_names():
    df = frame(MIXED, [""] * len(MIXED))
    lines = render(df, 60)
    assert max(len(line) for line in lines) <= 60
    assert len(set(rendered_labels(lines, MIXED))) == len(MIXED)
    assert "predictions (svc) (in %)" in lines[0]
    assert next(line for line in lines if "emotion" in line).split() == ["file", "emotion", "conf"]
    assert next(line for line in lines if "03a01Fa.wav" in line).split()[1:] == ["angry", "70"]
    wide = render(df, 160)  # room enough: the table as before, labels up to 48 characters
    assert rendered_labels(wide, MIXED)[:2] == ["…/Actor_01/03-01-05-01-02-01-01.wav",
                                                "…/Actor_01/03-01-05-01-02-02-01.wav"]
    assert next(line for line in wide if "emotion" in line).split()[-1] == "sur"


def test_table_rows():
    df = frame(FILES, ["", "", "could not decode"])
    rows = table_rows(df)
    assert rows[2][1] == "error" and rows[2][-1] == "could not decode" and rows[0][1] == "angry"
    assert len(rows[0]) == 4 + len(EMOTIONS) and rows[0][-1] == ""
    assert table_rows(df, percent=True)[0][2:5] == ["70", "70", "5"]


def test_exit_code_is_1_only_when_every_file_failed():
    assert exit_code(frame(FILES, ["bad header", "empty", "too short"])) == 1
    assert failed_files(frame(FILES, ["bad header", "", "too short"])) == (2, 3)
    assert exit_code(frame(FILES, ["bad header", "", "too short"])) == 0
    assert exit_code(frame(FILES, ["", "", ""])) == 0
    # a timeline: several windows of one file count as one file
    windows = frame([FILES[0]] * 4 + [FILES[1]], ["", "", "", "", "empty"])
    assert failed_files(windows) == (1, 2) and exit_code(windows) == 0


def test_no_speech_rows_are_not_read_errors_but_nothing_predicted_still_exits_1():
    df = frame(FILES, ["", "no speech detected: 0.00 s of voice", "bad header"])
    df["status"] = ["ok", "no_speech", "error"]
    from ser.predict import no_speech_files

    assert failed_files(df) == (1, 3) and no_speech_files(df) == 1 and exit_code(df) == 0
    assert table_rows(df)[1][1] == "no speech"
    quiet = frame(FILES[:2], ["no speech detected: silence", "no speech detected: silence"])
    quiet["status"] = "no_speech"
    assert failed_files(quiet) == (0, 2) and exit_code(quiet) == 1


def test_tables_take_the_width_columns_gives_even_when_piped():
    import os
    import subprocess
    import sys

    def width(columns: str | None) -> int:
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | ({"COLUMNS": columns} if columns else {})
        out = subprocess.run([sys.executable, "-c", "from ser.console import stdout; print(stdout.width)"],
                             env=env, capture_output=True, text=True, check=True).stdout  # stdout a pipe
        return int(out)

    assert (width("80"), width(None)) == (80, 160)


def test_the_segment_timeline_keeps_emotion_names_whole_at_any_width():
    from ser.cli_predict import _timeline_table

    rows = [{"path": "talk.wav", "start_s": float(i), "end_s": i + 3.0, "emotion": e, "confidence": 0.66,
             **{f"prob_{x}": (0.66 if x == e else 0.05) for x in EMOTIONS}, "status": "ok", "error": ""}
            for i, e in enumerate(["surprise", "disgust", "neutral"])]
    for width in (60, 80, 100, 160):
        console = Console(width=width, record=True, color_system=None)
        console.print(_timeline_table(pd.DataFrame(rows), "timeline (svc, window 3 s, hop 1 s)"))
        lines = console.export_text().splitlines()
        assert max(map(len, lines)) <= width
        body = [line for line in lines if line.split()[:1] == ["talk.wav"]]
        assert [line.split()[3] for line in body] == ["surprise", "disgust", "neutral"]
        header = next(line for line in lines if line.lstrip().startswith("file"))
        assert ("sur" in header) == (width >= 80)  # the seven probabilities when they fit ...
        assert ("in %" in lines[0]) == (width == 80)  # ... as whole percents when only those fit
