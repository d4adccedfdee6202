"""The Bar of issue 23: one vocabulary (docs vocab), every command complete.

Every command's ``-h`` works; commands that compute take ``--device`` and ``--json``; commands that
write take ``--out`` and ``--overwrite``; no short flag means two things; the old option names are in
no help text (they still work, hidden, with a deprecation note); ``eval --dataset`` exists; ``batch
--resume`` on an OUT with no batch starts one.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from restorekit.cli import get_app

runner = CliRunner()
APP = get_app()

#: every built-in command
COMMANDS = ("run", "list", "plugins", "batch", "compare", "train", "segment", "decompose", "invert", "visualize",
            "eval", "models", "sample")
#: the commands that compute (a fit, a search, a model): --device, --json
COMPUTE = ("run", "batch", "compare", "train", "segment", "decompose", "invert", "visualize", "eval", "sample")
#: the commands that write a folder or file: --out/-o and --overwrite (batch writes OUT, an argument, and
#: resumes instead of overwriting)
WRITE = ("run", "compare", "train", "segment", "decompose", "invert", "visualize", "eval", "sample")
#: old names of one concept: none may appear in any help text (each is a hidden alias)
FORBIDDEN = {
    "compare": ["--method"],
    "eval": ["--baseline", "-b"],
    "segment": ["--truth"],
    "train": ["--steps", "--steps-per-epoch"],
}
#: what help text must never show: type placeholders instead of value names
TYPE_PLACEHOLDERS = ("<bool>", "<list[str]>", "<str>", "<int>", "<float>", "[paths]...")


def _help(*args: str) -> str:
    r = runner.invoke(APP, [*args], env={"COLUMNS": "220", "NO_COLOR": "1", "TERM": "dumb"})
    assert r.exit_code == 0, (args, r.output)
    return r.stdout


def _options(text: str) -> list[tuple[str, str]]:
    """(long, short) option pairs of the Options panel: '--out  -o', '--json', ..."""
    pairs = []
    for line in text.splitlines():
        m = re.match(r"^\s*│\s+(--[a-z][a-z0-9-]*)\s+(-[a-zA-Z])?\s", line)
        if m:
            pairs.append((m.group(1), m.group(2) or ""))
    return pairs


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    return {c: _help(c, "-h") for c in COMMANDS}


def test_top_level_dash_h():
    text = _help("-h")
    assert "Usage" in text and "segment" in text
    assert _help("--help") == text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_dash_h(helps, command):
    assert "Usage" in helps[command]
    assert helps[command] == _help(command, "--help")
    names = [long for long, _ in _options(helps[command])]
    assert "--help" in names, names
    for placeholder in TYPE_PLACEHOLDERS:
        assert placeholder not in helps[command], (command, placeholder)


@pytest.mark.parametrize("command", COMPUTE)
def test_compute_commands_take_device_and_json(helps, command):
    names = [long for long, _ in _options(helps[command])]
    assert "--device" in names and "--json" in names, (command, names)


@pytest.mark.parametrize("command", WRITE)
def test_writing_commands_take_out_and_overwrite(helps, command):
    pairs = dict(_options(helps[command]))
    assert pairs.get("--out") == "-o", (command, pairs)
    assert "--overwrite" in pairs, (command, pairs)


def test_no_short_flag_means_two_things(helps):
    meaning: dict[str, str] = {}
    for command, text in helps.items():
        for long, short in _options(text):
            if short:
                assert meaning.setdefault(short, long) == long, (
                    f"{short} is {meaning[short]} elsewhere but {long} in {command}")
    assert meaning.get("-m") == "--metric" and meaning.get("-p") == "--prior" and meaning.get("-h") == "--help"


def test_one_long_option_has_one_short_flag_everywhere(helps):
    """docs/glossary.md: a short flag, where a command has one for an option, is the same in every command
    that has the option (-i for --iters in run, batch, compare, train, segment, decompose, invert, visualize)."""
    shorts: dict[str, set[str]] = {}
    for text in helps.values():
        for long, short in _options(text):
            shorts.setdefault(long, set()).add(short)
    mixed = {long: s for long, s in shorts.items() if len(s) > 1}
    assert not mixed, mixed
    assert shorts["--iters"] == {"-i"}


@pytest.mark.parametrize("command", sorted(FORBIDDEN))
def test_old_names_in_no_help(helps, command):
    names = {n for pair in _options(helps[command]) for n in pair if n}
    for old in FORBIDDEN[command]:
        assert old not in names, (command, old)
        assert re.search(rf"(?<![\w-]){re.escape(old)}(?![\w-])", helps[command]) is None, (command, old)


def test_new_names_present(helps):
    assert "--prior" in dict(_options(helps["compare"]))
    assert dict(_options(helps["eval"])).get("--prior") == "-p"
    assert "--reference" in dict(_options(helps["segment"]))
    train = dict(_options(helps["train"]))
    assert "--iters" in train and "--iters-per-epoch" in train
    assert "--method" in dict(_options(helps["segment"])) and dict(_options(helps["segment"]))["--method"] == ""
    assert "stopping rule" in helps["run"].lower()


def test_usage_reads_like_a_mature_cli(helps):
    assert re.search(r"batch \[OPTIONS\] IN OUT", helps["batch"]), helps["batch"][:300]
    out_line = next(line for line in helps["train"].splitlines() if "--out" in line)
    block = helps["train"][helps["train"].index(out_line):].split("--pairs")[0]
    assert "[required]" in block
    assert "(repeatable)" in helps["run"] or "repeat" in helps["run"]
    assert "SPEC" in helps["run"]


def test_eval_has_dataset(helps):
    assert "--dataset" in dict(_options(helps["eval"]))


def test_segment_dash_m_names_method(tmp_path):
    r = runner.invoke(APP, ["segment", str(tmp_path / "x.png"), "-m", "otsu"])
    assert r.exit_code == 2
    assert "--method" in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr


def test_old_names_still_work_with_a_note(tmp_path):
    """The hidden aliases do what the new names do, with a one-line note (here folded into the error line
    of a run that cannot start, so nothing is computed)."""
    r = runner.invoke(APP, ["segment", str(tmp_path / "missing.png"), "--truth", str(tmp_path / "m.png")])
    assert r.exit_code == 2 and "--truth is deprecated, use --reference" in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0
    r = runner.invoke(APP, ["train", "--steps", "3"])  # no --out: refused, with the note
    assert r.exit_code == 2 and "--steps is deprecated, use --iters" in r.stderr, r.stderr


def _images(folder, n=3):
    import imageio.v3 as iio

    folder.mkdir(parents=True)
    for i in range(n):
        iio.imwrite(folder / f"im{i}.png", (np.random.default_rng(i).random((16, 16)) * 255).astype(np.uint8))
    return folder


def test_batch_resume_on_empty_out_starts_a_batch(tmp_path):
    src = _images(tmp_path / "in")
    out = tmp_path / "out"
    args = ["batch", str(src), str(out), "--resume", "--prior", "median", "--workers", "1", "--json"]
    r = runner.invoke(APP, args)
    assert r.exit_code == 0, r.output
    assert (out / "manifest.sqlite").is_file()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["im0", "im1", "im2"]
    r = runner.invoke(APP, args)  # the same command again: the batch is resumed, nothing recomputed
    assert r.exit_code == 0, r.output


def test_batch_shard_and_save_restored(tmp_path):
    src = _images(tmp_path / "in", 5)
    got = []
    for k in (1, 2):
        out = tmp_path / f"out{k}"
        r = runner.invoke(APP, ["batch", str(src), str(out), "--shard", f"{k}/2", "--save", "restored",
                                "--prior", "median", "--workers", "1", "--json"])
        assert r.exit_code == 0, r.output
        dirs = sorted(p.name for p in out.iterdir() if p.is_dir())
        got.append(dirs)
        for d in dirs:
            assert sorted(f.name for f in (out / d).iterdir()) == ["restored.png", "run.json"]
    assert got == [["im0", "im2", "im4"], ["im1", "im3"]]
    r = runner.invoke(APP, ["batch", str(src), str(tmp_path / "o3"), "--shard", "3/2"])
    assert r.exit_code == 2 and "--shard" in r.stderr


def test_defaults_follow_the_measurements(tmp_path):
    """segment without a hint: texture-split (0.613 vs double-dip 0.550 mean IoU); with a hint double-dip
    (0.669 with a box); decompose --task dehaze: dark-channel (19.89 vs 16.15 dB)."""
    import json

    from restorekit.cli.segment import default_method

    assert default_method("segment", "segment", []) == "texture-split"
    assert default_method("segment", "segment", ["box:1,1,4,4"]) == "double-dip"
    assert default_method("decompose", "dehaze", []) == "dark-channel"
    assert default_method("decompose", "transparency", []) == "double-dip"
    src = _images(tmp_path / "in", 1) / "im0.png"
    r = runner.invoke(APP, ["segment", str(src), "--out", str(tmp_path / "s"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["method"] == "texture-split"
    r = runner.invoke(APP, ["decompose", str(src), "--task", "dehaze", "--out", str(tmp_path / "d"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["method"].startswith("dark-channel")


def test_overwrite_replaces_an_earlier_compare(tmp_path):
    src = _images(tmp_path / "in", 1) / "im0.png"
    out = tmp_path / "cmp"
    args = ["compare", str(src), "--prior", "median", "--out", str(out), "--json"]
    assert runner.invoke(APP, args).exit_code == 0
    r = runner.invoke(APP, args)
    assert r.exit_code == 2 and "--overwrite" in r.stderr
    r = runner.invoke(APP, [*args, "--overwrite"])
    assert r.exit_code == 0, r.output
    (out / "mine.txt").write_text("not restorekit's")
    r = runner.invoke(APP, [*args, "--overwrite"])
    assert r.exit_code == 2 and "mine.txt" in r.stderr


def test_overwrite_trusts_no_record_for_a_users_file(tmp_path):
    """compare.json / inspect.json name what restorekit wrote, but --overwrite checks what they name: a
    user's file put into a method's subfolder, or one a (hand-edited) record lists, is never replaced."""
    from tests.helpers import digests

    src = _images(tmp_path / "in", 1) / "im0.png"
    out = tmp_path / "cmp"
    args = ["compare", str(src), "--prior", "median", "--out", str(out), "--json"]
    assert runner.invoke(APP, args).exit_code == 0
    (out / "median" / "notes.txt").write_text("the user's, inside a method's folder")
    kept = digests(out)
    r = runner.invoke(APP, [*args, "--overwrite"])
    assert r.exit_code == 2 and "'median'" in r.stderr and digests(out) == kept
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "compare.json").write_text(json.dumps({"restorekit": "0", "files": {"compare": "thesis.txt"}}))
    (forged / "thesis.txt").write_text("precious")
    kept = digests(forged)
    r = runner.invoke(APP, ["compare", str(src), "--prior", "median", "--out", str(forged), "--json", "--overwrite"])
    assert r.exit_code == 2 and "thesis.txt" in r.stderr and digests(forged) == kept
