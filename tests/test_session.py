"""restorekit.session, the toolkit every command shares: its modules say what they are for, the old
homes under restorekit.run serve the same objects, and none of it imports torch when imported."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

MODULES = ("outdir", "signals", "commit", "record", "device", "figures")


@pytest.mark.parametrize("name", MODULES)
def test_every_session_module_says_what_it_is_for(name):
    module = importlib.import_module(f"restorekit.session.{name}")
    assert module.__doc__ and len(module.__doc__.strip()) > 40
    for public in module.__all__:
        assert not public.startswith("_") and getattr(module, public).__doc__, public


@pytest.mark.parametrize("old, new, names", [
    ("restorekit.run.outdir", "restorekit.session.outdir",
     ["OutputFolder", "prepare_output", "clean_stale", "not_replaceable", "pid_alive", "default_stem", "LOCK_NAME"]),
    ("restorekit.run.signals", "restorekit.session.signals",
     ["RunSignals", "run_signals", "hold", "deferred_signals", "exit_code_for"]),
    ("restorekit.run.outputs", "restorekit.session.commit", ["committing"]),
    ("restorekit.run.outputs", "restorekit.session.record", ["record_json"]),
    ("restorekit.run.record", "restorekit.session.record", ["record_json"]),
    ("restorekit.run.plan", "restorekit.session.device", ["pick_device", "cpu_has_native_bf16"]),
])
def test_the_old_homes_serve_the_same_objects(old, new, names):
    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(old_module, name) is getattr(new_module, name), name


def test_the_old_private_names_still_import():
    from restorekit.run.outdir import _host_tag
    from restorekit.run.outputs import _figure, _to_rgb
    from restorekit.run.record import _Section
    from restorekit.session.figures import figure, to_rgb
    from restorekit.session.outdir import host_tag
    from restorekit.session.record import Section

    assert (_host_tag, _figure, _to_rgb, _Section) == (host_tag, figure, to_rgb, Section)


@pytest.mark.parametrize("device, cuda", [("auto", True), ("cuda", True), ("cuda:1", True), ("cpu", False),
                                          ("mps", False)])
def test_may_use_cuda_reads_the_device_text(device, cuda):
    from restorekit.session.device import may_use_cuda

    assert may_use_cuda(device) is cuda


def test_the_session_modules_do_not_import_torch():
    code = ("import sys; import " + ", ".join(f"restorekit.session.{m}" for m in MODULES)
            + "; print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_continue_output_locks_a_folder_in_place(tmp_path):
    """A folder a command continues (train --resume): checked against the inputs, locked where it is with
    its files kept, refused while a live process holds it, a dead one's lock replaced; abandon() unlocks."""
    import json
    import os

    from restorekit.errors import UsageError
    from restorekit.session.outdir import LOCK_NAME, continue_output, host_tag

    out = tmp_path / "model"
    out.mkdir()
    (out / "checkpoint.safetensors").write_text("x")
    folder = continue_output(out, inputs=[tmp_path / "data"])
    assert folder.staging is None and json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    folder.abandon()
    assert sorted(os.listdir(out)) == ["checkpoint.safetensors"]
    (out / LOCK_NAME).write_text(json.dumps({"pid": os.getppid(), "host": host_tag()}))
    with pytest.raises(UsageError, match=f"in use by another restorekit run \\(process {os.getppid()}\\)"):
        continue_output(out)
    (out / LOCK_NAME).write_text(json.dumps({"pid": os.getppid(), "host": "elsewhere"}))
    with pytest.raises(UsageError, match="another machine.*delete"):
        continue_output(out)
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    (out / LOCK_NAME).write_text(json.dumps({"pid": dead, "host": host_tag()}))
    continue_output(out).abandon()
    assert not (out / LOCK_NAME).exists()
    (out / "data").mkdir()
    with pytest.raises(UsageError, match="holds an input|contains an input"):
        continue_output(out, inputs=[out / "data"])
    with pytest.raises(UsageError, match="not a folder"):
        continue_output(out / "checkpoint.safetensors")
