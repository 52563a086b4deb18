"""Prediction commands of the `ser` CLI: predict (files, folders, long recordings), listen, serve, export."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ser import EMOTIONS
from ser.console import console, fail, progress, stdout


def _fail(message: str) -> None:
    fail(message)


def _load(model: Path):
    from ser.artifact import ARTIFACT_FILE, ArtifactError, load_artifact

    if not (model / ARTIFACT_FILE).is_file() and not model.exists():
        _fail(f"no model found at {model}; run `make run` or pass --model")
    try:
        return load_artifact(model)
    except (ArtifactError, FileNotFoundError) as err:
        _fail(str(err))
    except (KeyError, ValueError) as err:  # e.g. an artefact written by an older ser
        _fail(f"{model}: cannot load this artefact ({type(err).__name__}: {err}); retrain it with this version")


def _check_suffix(path: Optional[Path], allowed: tuple[str, ...], option: str) -> None:
    if path is not None and path.suffix.lower() not in allowed:
        _fail(f"{option} must end in {', '.join(allowed)}, not {path.suffix or '(no suffix)'!r}")


def _fmt(value: Any, digits: int = 2) -> str:
    return "" if value is None or value != value else f"{value:.{digits}f}"


EMOTIONS_HELP = (f"predict only these emotions, comma-separated (e.g. angry,happy,neutral,sad; from "
                 f"{','.join(EMOTIONS)}): the others get probability 0 and the rest is renormalised "
                 "(default: params.yaml predict.emotions, else all seven)")


def _predict_block(params: Path) -> dict[str, Any]:
    """The raw `predict:` block of `params` ({} when the file or the block is absent); exit 2 on bad YAML."""
    import yaml

    if not params.is_file():
        return {}
    try:
        raw = yaml.safe_load(params.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        fail(f"{params}: {err}", code=2)
    return (raw.get("predict") or {}) if isinstance(raw, dict) else {}


def _emotions(option: Optional[str], params: Path) -> tuple[str, ...] | None:
    """--emotions, else params.yaml's predict.emotions, else None (all seven); exit 2 naming a bad value."""
    from pydantic import ValidationError

    from ser.params import PredictParams, parse_emotions

    if option is not None:
        try:
            return parse_emotions(option)
        except ValueError as err:
            fail(f"--emotions {option!r}: {err}", code=2)
    try:
        return parse_emotions(PredictParams.model_validate(_predict_block(params)).emotions)
    except ValidationError as err:
        problems = "; ".join(f"predict.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        fail(f"{params}: {problems}", code=2)


class _Timeline:
    """The --segment timeline, laid out for the console's width: file and emotion names are never cut;
    the seven probabilities (three-letter headers) turn into whole percents, then give way, when they do
    not fit (the full values are in --out)."""

    def __init__(self, df, title: str) -> None:
        from ser.predict import display_paths

        head = df.head(200)
        self.title = title
        self.rows = [{**r._asdict(), "path": label}
                     for label, r in zip(display_paths([str(p) for p in head["path"]]), head.itertuples(index=False))]

    def table(self, probs: bool, percent: bool = False) -> Table:
        from rich import box

        title = self.title + (" (probabilities in %)" if probs and percent else "")
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        table.add_column("file", no_wrap=True)
        for col in ("start", "end"):
            table.add_column(col, justify="right", no_wrap=True)
        table.add_column("emotion", no_wrap=True)
        table.add_column("conf", justify="right", no_wrap=True)
        for e in EMOTIONS if probs else ():
            table.add_column(e[:3], justify="right", no_wrap=True, min_width=3)
        blank = [""] * (len(EMOTIONS) if probs else 0)
        for row in self.rows:
            if row.get("status") == "no_speech" and row["start_s"] == row["start_s"] and row["start_s"] is not None:
                table.add_row(row["path"], _fmt(row["start_s"]), _fmt(row["end_s"]), "[yellow]no speech[/]", "", *blank)
            elif row["error"]:
                table.add_row(row["path"], "", "", f"[red]error: {row['error']}[/]", "", *blank)
            else:
                table.add_row(row["path"], _fmt(row["start_s"]), _fmt(row["end_s"]), row["emotion"],
                              _fmt(row["confidence"]),
                              *((f"{100 * row['prob_' + e]:.0f}" if percent else _fmt(row["prob_" + e])
                                 for e in EMOTIONS) if probs else ()))
        return table

    def __rich_console__(self, console, options):
        from rich.measure import Measurement

        wide = options.update_width(10_000)  # the natural width: a measure never exceeds the offer
        for table in (self.table(probs=True), self.table(probs=True, percent=True)):
            if Measurement.get(console, wide, table).maximum <= options.max_width:
                yield table
                return
        yield self.table(probs=False)


def _timeline_table(df, title: str) -> _Timeline:
    return _Timeline(df, title)


def predict(
    paths: Annotated[list[Path], typer.Argument(help="audio files or folders", metavar="PATH...", show_default=False)],
    model: Annotated[Path, typer.Option(help="model artefact folder")] = Path("models/best"),
    out: Annotated[Optional[Path], typer.Option(help="write predictions to .csv, .parquet or .json")] = None,
    plot: Annotated[Optional[Path], typer.Option(
        help="PNG: a radar of the seven probabilities per file (up to 12), or with --segment emotions over time")] = None,
    segment: Annotated[Optional[float], typer.Option(
        help="long recordings: predict sliding windows of SECONDS each and print a timeline", min=0.05)] = None,
    hop: Annotated[Optional[float], typer.Option(help="with --segment: seconds between window starts (default: "
                                                       "the window length)", min=0.01)] = None,
    group_by: Annotated[str, typer.Option(
        help="which files share a voice, for a model trained with per-speaker normalisation: auto (the speaker a "
             "corpus layout gives, else the folder), speaker, folder, or none (global statistics); with --segment, "
             "anything but none makes each recording one group")] = "auto",
    emotions: Annotated[Optional[str], typer.Option(help=EMOTIONS_HELP, show_default=False)] = None,
    params: Annotated[Path, typer.Option("--params", help="params.yaml (its optional predict.emotions is the default "
                                                          "of --emotions)")] = Path("params.yaml"),
    workers: Annotated[Optional[int], typer.Option(
        help="processes decoding files and computing features (default: one per core; 1: this process only, no "
             "pool); not used with --segment", min=1, show_default=False)] = None,
) -> None:
    """Predict the emotion of each file (folders are searched recursively); a bad file gets an error row."""
    from ser.predict import (collect_rows, exit_code, expand_paths, failed_files, files_table, iter_file_rows,
                             predict_files_segments, write_table)
    from ser.predict_pool import default_workers

    from ser.grouping import GROUP_MODES

    if hop is not None and segment is None:
        _fail("--hop needs --segment")
    if group_by not in GROUP_MODES:
        _fail(f"--group-by must be one of {', '.join(GROUP_MODES)}, not {group_by!r}")
    _check_suffix(out, (".csv", ".parquet", ".json"), "--out")
    _check_suffix(plot, (".png",), "--plot")
    allowed = _emotions(emotions, params)
    artifact = _load(model)
    files = expand_paths(paths)
    if not files:
        _fail("no audio files found in the given paths")
    limit = 50 if segment is None else 200
    with progress("clips" if segment is None else "files") as bar:
        task = bar.add_task("predict", total=len(files))
        tick = lambda: bar.advance(task)  # noqa: E731
        if segment is None:  # rows stream to --out; only the table's first rows stay in memory
            rows = iter_file_rows(artifact, files, on_file=tick, group_by=group_by, emotions=allowed,
                                  workers=workers or default_workers())
            df, tally = collect_rows(rows, out, keep=limit, keep_all=plot is not None)
        else:
            df = predict_files_segments(artifact, files, segment, hop, on_file=tick, group=group_by != "none",
                                        emotions=allowed)
            if out:
                write_table(df, out)
    n_rows = tally.rows if segment is None else len(df)
    if out:
        console.print(f"wrote {n_rows} {'windows' if segment else 'predictions'} to {out}")
    if plot:
        from ser.predict_plots import plot_radars, plot_timeline

        if segment is None:
            plot_radars(df, plot, title=f"emotion probabilities ({artifact.name})")
        else:
            plot_timeline(df, plot, title=f"emotion over time ({artifact.name}, {segment:g}-s windows)")
        console.print(f"wrote {plot}")
    if allowed:
        console.print(f"predicting only {', '.join(allowed)} (the other emotions' probabilities are 0)")
    if segment is None:
        stdout.print(files_table(df, f"predictions ({artifact.name})", limit=limit))
    else:
        hop_s = segment if hop is None else hop
        stdout.print(_timeline_table(df, f"timeline ({artifact.name}, window {segment:g} s, hop {hop_s:g} s)"))
    if n_rows > limit:
        stdout.print(f"... {n_rows - limit} more rows" + (f" in {out}" if out else " (use --out)"))
    bad, total = tally.failed_files() if segment is None else failed_files(df)
    if bad:
        console.print(f"[yellow]{bad} of {total} file(s) could not be read (see the error column)")
    quiet = tally.no_speech if segment is None else int((df["status"] == "no_speech").sum())
    if quiet:
        what = "file(s)" if segment is None else "window(s)"
        console.print(f"[yellow]{quiet} {what} with no speech detected (silence, a tone, noise or a sample rate under "
                      "8 kHz): no emotion given (status no_speech)")
    if (tally.exit_code() if segment is None else exit_code(df)):
        fail(f"no file could be predicted ({total} tried)")


# -- listen ------------------------------------------------------------------------------------------


def _bar(p: float, width: int = 24) -> str:
    n = int(round(max(0.0, min(1.0, p)) * width))
    return "#" * n + "." * (width - n)


_LETTER = {"angry": "A", "disgust": "D", "fear": "F", "happy": "H", "neutral": "N", "sad": "S", "surprise": "U"}
_COLOR = {"angry": "red", "disgust": "magenta", "fear": "blue", "happy": "yellow", "neutral": "white",
          "sad": "cyan", "surprise": "green"}


def _listen_view(event, history: list, source: str, stats, voice: str = "") -> Table:
    table = Table(title=f"listening: {source}", caption=(
        f"window {event.index + 1}, {event.end_s:.1f} s heard, RTF {stats.rtf:.3f}, "
        f"{1000 * event.compute_s:.0f} ms per window" + (f"; {voice}" if voice else "")))
    table.add_column("emotion")
    table.add_column("now", justify="right")
    table.add_column("smoothed", justify="right")
    table.add_column("")
    for i, e in enumerate(EMOTIONS):
        table.add_row(f"[{_COLOR[e]}]{e}[/]", _fmt(event.proba[i]), _fmt(event.smoothed[i]), _bar(event.smoothed[i]))
    now = {"silent": "silence", "no_speech": "no speech"}.get(event.state) or f"{event.emotion} ({event.confidence:.2f})"
    table.add_row("[bold]current[/]", now, str(event.smoothed_emotion or "-"), "")
    line = "".join(f"[{_COLOR[e]}]{_LETTER[e]}[/]" if e else "." for e in history[-48:])
    table.add_row("history", "", "", line)
    return table


def _voice_note(predictor) -> str:
    """The state of speaker adaptation, for the live view's caption."""
    scaler = predictor.artifact.scaler
    if not predictor.adapt or scaler.mode == "none":
        return "global normalisation"
    if scaler.uses_groups(predictor.voice.clips):
        return f"adapted to this voice ({predictor.voice.clips} windows)"
    return f"warming up: {predictor.voice.clips}/{scaler.min_group_size} voiced windows, global normalisation until then"


def listen(
    model: Annotated[Path, typer.Option(help="model artefact folder")] = Path("models/best"),
    device: Annotated[Optional[str], typer.Option(help="input device: index or part of its name (default: the system's)")] = None,
    window: Annotated[Optional[float], typer.Option(help="seconds per prediction window (default: predict.window_s or 3)", min=0.1)] = None,
    hop: Annotated[Optional[float], typer.Option(help="seconds between predictions (default: predict.hop_s or 1)", min=0.05)] = None,
    smoothing: Annotated[Optional[float], typer.Option(help="weight of the past in the smoothed history, 0..<1 (default: predict.smoothing or 0.6)", min=0.0, max=0.99)] = None,
    silence_db: Annotated[Optional[float], typer.Option("--silence-db", help="windows quieter than this RMS level (dBFS) are shown as silence; -999 turns it off")] = -55.0,
    file: Annotated[Optional[Path], typer.Option(help="stream this audio file instead of the microphone")] = None,
    realtime: Annotated[bool, typer.Option(help="with --file: pace the file like a live source")] = False,
    seconds: Annotated[Optional[float], typer.Option(help="stop after this much audio (default: until Ctrl-C / end of file)", min=0.1)] = None,
    list_devices: Annotated[bool, typer.Option("--list-devices", help="list the audio inputs and exit")] = False,
    out: Annotated[Optional[Path], typer.Option(help="also write every window's prediction to .csv, .parquet or .json")] = None,
    params: Annotated[Path, typer.Option("--params", help="params.yaml (its optional `predict:` block gives the defaults)")] = Path("params.yaml"),
    adapt: Annotated[bool, typer.Option("--adapt/--no-adapt", help="for a model trained per speaker: after a warm-up of "
                                        "normalize.min_group_size voiced windows, normalise by this voice's running statistics")] = True,
    emotions: Annotated[Optional[str], typer.Option(help=EMOTIONS_HELP, show_default=False)] = None,
) -> None:
    """Live emotion from the microphone (or --file): sliding windows, current emotion and a smoothed history."""
    import yaml
    from rich.live import Live

    from ser.stream import MicError, StreamPredictor, file_source, import_sounddevice, input_devices, mic_source, stream_settings

    if list_devices:
        try:
            inputs = input_devices()
        except MicError as err:
            _fail(str(err))
        if not inputs:
            _fail("no audio input device found")
        table = Table(title="audio inputs")
        for col in ("index", "name", "channels", "default Hz"):
            table.add_column(col)
        for d in inputs:
            table.add_row(str(d["index"]), d["name"], str(d["channels"]), f"{d['default_samplerate']:g}")
        stdout.print(table)
        return
    _check_suffix(out, (".csv", ".parquet", ".json"), "--out")
    raw = {}
    if params.is_file():
        try:
            raw = yaml.safe_load(params.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            _fail(f"{params}: {err}")
    try:
        cfg = stream_settings(raw, window_s=window, hop_s=hop, smoothing=smoothing)
    except (TypeError, ValueError) as err:
        _fail(f"{params}: bad predict: block ({err})")
    allowed = _emotions(emotions, params)
    sd = None
    if file is None:  # fail on a missing microphone before loading the model
        try:
            sd = import_sounddevice()
            if not input_devices(sd):
                raise MicError("no audio input device found (no microphone, or none this process may use); "
                               "use --file AUDIO to run on a recording")
        except MicError as err:
            _fail(str(err))
    artifact = _load(model)
    try:
        predictor = StreamPredictor(artifact, cfg["window_s"], cfg["hop_s"], cfg["smoothing"],
                                    silence_dbfs=None if silence_db is None or silence_db <= -200 else silence_db,
                                    adapt=adapt, emotions=allowed)
    except ValueError as err:
        _fail(str(err))
    predictor.warmup()
    sr = predictor.sample_rate
    block_s = min(0.1, predictor.hop_s)
    if file is not None:
        source, label = file_source(file, block_s, sr, realtime=realtime), str(file)
    else:
        source, label = mic_source(device, sr, block_s, sd=sd), f"microphone {device if device is not None else '(default)'}"
    history: list[str | None] = []
    rows: list[dict] = []
    console.print(f"window {predictor.window_s:g} s, hop {predictor.hop_s:g} s, smoothing {predictor.smoothing:g}"
                  + (f", emotions {','.join(allowed)}" if allowed else "") + ("" if file else "; Ctrl-C to stop"))
    from ser.audio import AudioError

    live = Live(Table(title=f"listening: {label} (waiting for the first {predictor.window_s:g} s)"),
                console=console, refresh_per_second=8, transient=False)
    try:
        with live:
            def show(event) -> None:
                history.append(None if event.silent else event.smoothed_emotion)
                rows.append(event.as_row())
                live.update(_listen_view(event, history, label, predictor.stats, _voice_note(predictor)))

            predictor.run(source, on_event=show, max_s=seconds)
    except KeyboardInterrupt:
        pass
    except (MicError, AudioError) as err:
        _fail(str(err))
    finally:
        source.close()  # stops the sound card stream (a generator's `with` block) right away
    if not console.is_terminal:
        console.print()
    stats = predictor.stats
    if out and rows:
        import pandas as pd

        from ser.predict import write_table

        write_table(pd.DataFrame(rows), out)
        console.print(f"wrote {len(rows)} windows to {out}")
    console.print(f"{stats.windows} windows ({stats.silent - stats.no_speech} silent, {stats.no_speech} without speech) "
                  f"over {stats.audio_s:.1f} s of audio; "
                  f"real-time factor {stats.rtf:.3f} (processing time / audio time)")


# -- serve -------------------------------------------------------------------------------------------


def serve(
    model: Annotated[Path, typer.Option(help="model artefact folder")] = Path("models/best"),
    host: Annotated[str, typer.Option(help="address to bind (127.0.0.1: this machine only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port", min=0, max=65535)] = 8000,
    max_upload_mb: Annotated[float, typer.Option(help="largest file accepted, MB", min=0.001)] = 10.0,
    max_duration_s: Annotated[float, typer.Option(help="longest audio accepted, seconds", min=0.1)] = 60.0,
    max_files: Annotated[int, typer.Option(help="most files per /predict/batch request", min=1)] = 32,
    max_batch_mb: Annotated[float, typer.Option(help="largest /predict/batch request body, MB", min=0.001)] = 64.0,
    request_timeout_s: Annotated[float, typer.Option(
        help="a request's headers and body must arrive within this many seconds, else the connection is closed",
        min=0.1)] = 30.0,
    keep_alive_s: Annotated[int, typer.Option(help="idle keep-alive connections close after this many seconds",
                                              min=1)] = 5,
    max_connections: Annotated[int, typer.Option(help="open connections at once; more are answered 503", min=1)] = 64,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the model over HTTP (FastAPI): POST /predict, POST /predict/batch, GET /health, GET /model, /docs."""
    from ser.artifact import ArtifactError
    from ser.serve import Limits, create_app, server_config

    limits = Limits(max_upload_bytes=int(max_upload_mb * 2**20), max_duration_s=max_duration_s,
                    max_files=max_files, max_batch_bytes=int(max_batch_mb * 2**20),
                    request_timeout_s=request_timeout_s, keep_alive_s=keep_alive_s, max_connections=max_connections)
    try:
        app = create_app(model, limits)
    except (ArtifactError, FileNotFoundError, KeyError, ValueError) as err:
        _fail(str(err))
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]binding {host}: the API has no authentication; anyone who can reach it can use it")
    console.print(f"serving {model} on http://{host}:{port} (the page: /, docs: /docs, spec: /openapi.json)")
    uvicorn.Server(server_config(app, limits, host, port, log_level)).run()


# -- export ------------------------------------------------------------------------------------------


def export(
    fmt: Annotated[str, typer.Option("--format", help="tflite or savedmodel")],
    out: Annotated[Path, typer.Option(help="output: a .tflite file, or a SavedModel folder")],
    model: Annotated[Path, typer.Option(help="model artefact folder (a Keras model)")] = Path("models/best"),
    tolerance: Annotated[float, typer.Option(help="largest allowed |exported - Keras| probability difference", min=0.0)] = 1e-4,
    inputs: Annotated[int, typer.Option(help="inputs for the parity check", min=1)] = 8,
) -> None:
    """Export a Keras model artefact (scaler folded in) to TFLite or a SavedModel, checked against the Keras model."""
    from ser.artifact import ArtifactError
    from ser.export import FORMATS, ExportError, export_artifact

    if fmt.lower() not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    try:
        result = export_artifact(model, out, fmt, tolerance=tolerance, n_inputs=inputs)
    except (ExportError, ArtifactError) as err:
        _fail(str(err))
    stdout.print(f"parity on {result.n_inputs} inputs: max |exported - keras| = {result.max_abs_diff:.3g} "
                        f"(tolerance {result.tolerance:g})")
    console.print(f"wrote {result.format} to {result.path} ({result.size_bytes / 1024:.0f} KiB)")
    if result.note:
        sidecar = result.path / "ser_export.json" if result.format == "savedmodel" else Path(f"{result.path}.json")
        console.print(f"[yellow]{result.note}[/] (see {sidecar})")


def register(app: typer.Typer) -> None:
    """Add the prediction commands to the main app."""
    app.command()(predict)
    app.command()(listen)
    app.command()(serve)
    app.command()(export)
