"""One module per DVC stage, each with one `main(params, ...)` doing the stage's I/O.

`python -m ser.stages.<name>` is what dvc.yaml runs; `ser <name>` runs the same main.
"""
