"""One module per DVC stage. Each exposes ``run(params, ...)``: the whole validated
``params.yaml`` goes in, the stage reads its own sections, and writes its outputs to disk.
The CLI and the stage notebooks call the same ``run``."""
