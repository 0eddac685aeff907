"""Security: local-only by default, upload limits, paths that cannot escape, no pickle, no shell.

The binding test starts the real app with no address flag and reads the kernel's socket table;
the code checks parse sslapp/ with `ast`, so a new call anywhere is caught, not just known lines.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from sslapp.workspace import WorkspaceError, child_workspace

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sslapp"


def _sources() -> list[tuple[Path, ast.AST]]:
    return [(p, ast.parse(p.read_text(), filename=str(p))) for p in sorted(PACKAGE.rglob("*.py"))]


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


# -- local only by default ----------------------------------------------------------------------
def test_config_binds_localhost_and_sets_upload_limits():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["browser"]["serverAddress"] in ("127.0.0.1", "localhost")
    assert 1 <= int(config["server"]["maxUploadSize"]) <= 4096  # MB per file, enforced by Streamlit
    assert config["browser"]["gatherUsageStats"] is False
    app_sh = (ROOT / "scripts" / "app.sh").read_text()
    assert "0.0.0.0" not in app_sh


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(addr)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc/net/tcp")
def test_the_app_started_without_flags_listens_on_loopback_only(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "browser"))
    from streamlit_driver import free_port

    port = free_port()
    env = {**os.environ, "SSLAPP_WORKSPACE": str(tmp_path / "ws"), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    env.pop("STREAMLIT_SERVER_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        end = time.monotonic() + 90
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.25)
        else:
            pytest.fail("the app did not start")
        addrs = _listening(port)
        assert addrs, "nothing listens on the port"
        loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1
        assert addrs <= loopback, f"the app listens beyond loopback: {addrs}"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(20)


# -- upload limits --------------------------------------------------------------------------------
def _uploaded(name: str, data: bytes):
    from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec

    return UploadedFile(UploadedFileRec(file_id=name, name=name, type="image/png", data=data), None)


def test_upload_count_and_total_size_limits_give_a_clear_message(monkeypatch):
    from sslapp.ui.pages import data

    ok = [_uploaded(f"{i}.png", b"x") for i in range(3)]
    assert data.check_upload(ok) is None
    monkeypatch.setattr(data, "MAX_FILES_PER_UPLOAD", 2)
    message = data.check_upload(ok)
    assert "3 files is more than 2 per upload" in message and "zip" in message
    monkeypatch.setattr(data, "MAX_FILES_PER_UPLOAD", 100)
    monkeypatch.setattr(data, "MAX_UPLOAD_TOTAL_MB", 1)
    big = [_uploaded("a.png", b"\0" * (600 << 10)), _uploaded("b.png", b"\0" * (600 << 10))]
    message = data.check_upload(big)
    assert "MB per upload" in message and "Split the upload" in message


def test_uploaded_names_cannot_leave_the_upload_folder(ws):
    from sslapp.ui.pages.data import save_uploads

    names = ["../../evil.png", "/etc/passwd", "a/../../b.png", "..\\..\\win.png", "ok/cat.png", "..", ""]
    target = save_uploads(ws, [_uploaded(n, b"data") for n in names])
    written = [p for p in target.rglob("*") if p.is_file()]
    assert len(written) == len(names)
    for p in written:
        assert p.resolve().is_relative_to(target.resolve())
    assert not (ws.root / "evil.png").exists() and not (ws.tmp_dir / "b.png").exists()


# -- names that cannot escape -------------------------------------------------------------------
BAD_NAMES = ["..", ".", "", "../x", "a/b", "/etc", "~root", "x" * 65, "a\0b", "-rf", ".hidden", "a\\b", "é"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_workspace_names_cannot_escape_their_parent(tmp_path, name):
    with pytest.raises(WorkspaceError):
        child_workspace(tmp_path, name)


def test_good_workspace_names_stay_inside(tmp_path):
    for name in ("project", "cifar-10_v2", "a.b"):
        assert child_workspace(tmp_path, name).parent == tmp_path.resolve()


def test_export_names_cannot_leave_exports(ws):
    from sslapp.export.job import export_target
    from sslapp.export.manifest import ExportError

    assert export_target(ws, "my-model").parent == ws.exports_dir.resolve()
    assert export_target(ws).parent == ws.exports_dir.resolve()
    for name in ("../x", "/tmp/x", "..", "a/b", "x" * 65):
        with pytest.raises(ExportError, match="export name"):
            export_target(ws, name)


def test_an_export_job_with_an_escaping_name_fails_without_writing(ws):
    from sslapp.cli.common import run_job_in_foreground

    job = run_job_in_foreground(ws, "export", {"name": "../../escaped"})
    assert job["status"] == "failed" and "export name" in job["error"]
    assert not (ws.root.parent / "escaped").exists() and not (ws.root / "escaped").exists()


# -- no pickle from user files, no shell ----------------------------------------------------------
def test_every_torch_load_uses_weights_only():
    bad, seen = [], 0
    for path, tree in _sources():
        for call, name in _calls(tree):
            if name.endswith("torch.load") or name.endswith("serialization.load"):
                seen += 1
                flag = _kw(call, "weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    bad.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert seen >= 1  # the checkpoint loader; if it moved, this test must follow it
    assert not bad, f"torch.load without weights_only=True: {bad}"


# The exporter reloads the TorchScript file it has just written, to check its outputs match; it
# never loads a TorchScript file a user supplies (`sslapp predict` runs the ONNX file).
JIT_LOAD_ALLOWED = {"sslapp/export/verify.py"}


def test_no_pickle_loading_anywhere_in_the_package():
    bad = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(m and m.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "shelve", "marshal")
                       for m in mods):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {mods}")
        for call, name in _calls(tree):
            if name.split(".")[-1] in ("load", "loads") and name.split(".")[0] in ("pickle", "joblib", "dill",
                                                                                    "marshal", "shelve"):
                bad.append(f"{path.relative_to(ROOT)}:{call.lineno} {name}")
            if name in ("np.load", "numpy.load"):
                flag = _kw(call, "allow_pickle")
                if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                    bad.append(f"{path.relative_to(ROOT)}:{call.lineno} np.load(allow_pickle=...)")
            if name.endswith("read_pickle"):
                bad.append(f"{path.relative_to(ROOT)}:{call.lineno} {name}")
            if name.endswith("jit.load") and str(path.relative_to(ROOT)) not in JIT_LOAD_ALLOWED:
                bad.append(f"{path.relative_to(ROOT)}:{call.lineno} {name}")
    assert not bad, bad


def test_no_shell_is_invoked():
    bad = []
    for path, tree in _sources():
        for call, name in _calls(tree):
            if name in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput") or \
                    name.startswith("os.exec") or name.startswith("os.spawn"):
                bad.append(f"{path.relative_to(ROOT)}:{call.lineno} {name}")
            if name.startswith("subprocess.") or name in ("Popen", "run", "check_output", "check_call", "call"):
                shell = _kw(call, "shell")
                if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
                    bad.append(f"{path.relative_to(ROOT)}:{call.lineno} {name}(shell=...)")
                if call.args and isinstance(call.args[0], ast.Constant | ast.JoinedStr | ast.BinOp):
                    bad.append(f"{path.relative_to(ROOT)}:{call.lineno} {name} with a command string")
            if name in ("eval", "exec"):
                bad.append(f"{path.relative_to(ROOT)}:{call.lineno} {name}")
    assert not bad, bad


def test_a_map_file_holding_pickled_objects_is_refused(ws):
    """Artifacts are npz files of plain arrays; one holding objects (which needs pickle) is not loaded."""
    import numpy as np

    from sslapp.maps.read import load_map

    evil = ws.embeddings_dir / "map-evil.npz"
    np.savez(evil, item_ids=np.array([object()], dtype=object), xy=np.zeros((1, 2)), cluster=np.zeros(1))
    artifact_id = ws.store.add_artifact("map", str(evil.relative_to(ws.root)), {})
    with pytest.raises(ValueError, match="pickle"):
        load_map(ws, {"id": artifact_id, "path": str(evil.relative_to(ws.root)), "meta": {}})
