"""Run benchmark scripts one after another in this one process, as `python SCRIPT ARGS` would (runpy,
`__main__`), so the smoke test pays for importing torch and sslapp once instead of once per script.

    python tests/_bench_runner.py SPEC.json RESULTS.json

SPEC: [{"name", "script", "argv", "cwd", "env"}]; RESULTS: {name: {"rc", "stdout", "stderr", "seconds"}}.
Each script's stdout and stderr are captured at the file descriptors, so what its own subprocesses
print is caught too; an exception is its traceback on stderr and exit code 1, as Python's would be.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import tempfile
import time
import traceback


def _run(entry: dict) -> dict:
    out_path, err_path = (os.path.join(entry["cwd"], f".smoke.{s}") for s in ("out", "err"))
    saved = {k: os.environ.get(k) for k in entry["env"]}
    os.environ.update(entry["env"])
    tempfile.tempdir = entry["env"].get("TMPDIR")
    here, argv, path = os.getcwd(), sys.argv, list(sys.path)
    os.chdir(entry["cwd"])
    sys.argv = [entry["script"], *entry["argv"]]
    sys.path.insert(0, os.path.dirname(entry["script"]))  # as `python SCRIPT` puts the script's folder first
    started, rc = time.monotonic(), 0
    sys.stdout.flush(), sys.stderr.flush()
    fds = os.dup(1), os.dup(2)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        os.dup2(out.fileno(), 1), os.dup2(err.fileno(), 2)
        try:
            runpy.run_path(entry["script"], run_name="__main__")
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - any failure is the script's exit code 1, as Python's
            traceback.print_exc()
            rc = 1
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(fds[0], 1), os.dup2(fds[1], 2)
            os.close(fds[0]), os.close(fds[1])
    os.chdir(here)
    sys.argv, sys.path[:] = argv, path
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    with open(out_path, errors="replace") as out, open(err_path, errors="replace") as err:
        return {"rc": rc, "stdout": out.read(), "stderr": err.read(), "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    spec_path, results_path = sys.argv[1:3]
    with open(spec_path) as f:
        spec = json.load(f)
    results = {entry["name"]: _run(entry) for entry in spec}
    with open(results_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
