"""Bad input, generated (hypothesis): every case ends in success or a HomefireError with a one-line
message, never another exception or a hang. Crashers found are kept below as explicit examples."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from homefire import config as cfg
from homefire.cli import build_parser, main
from homefire.engine import cartridge as C
from homefire.engine.template import ChatTemplate
from homefire.errors import HomefireError
from homefire.models.gguf import read_gguf

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def one_line(exc: HomefireError) -> None:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text, text


# ----- GGUF headers ------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=4096))
@example(data=b"GGUF")
@example(data=b"GGUF\x03\x00\x00\x00" + b"\xff" * 16)  # absurd tensor and key counts
def test_random_bytes_are_never_a_model(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("gguf") / "x.gguf"
    path.write_bytes(data)
    with pytest.raises(HomefireError) as err:
        read_gguf(path)
    one_line(err.value)


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from homefire.models.store import embedded_model

    path = tmp_path_factory.mktemp("model") / "copy.gguf"
    shutil.copyfile(embedded_model().path, path)
    return path


@FUZZ
@given(cut=st.integers(min_value=0, max_value=2_000_000))
def test_truncated_real_models_are_refused(
    tmp_path_factory: pytest.TempPathFactory, model_copy: Path, cut: int
) -> None:
    path = tmp_path_factory.mktemp("cut") / "cut.gguf"
    with model_copy.open("rb") as src:
        path.write_bytes(src.read(cut))
    with pytest.raises(HomefireError) as err:
        read_gguf(path)
    one_line(err.value)


@FUZZ
@given(offset=st.integers(min_value=0, max_value=200_000), bit=st.integers(min_value=0, max_value=7))
@example(offset=320, bit=0)  # found by this test: a damaged key length put binary junk in the message
def test_bit_flipped_headers_are_read_or_refused(model_copy: Path, offset: int, bit: int) -> None:
    with model_copy.open("r+b") as f:
        f.seek(offset)
        original = f.read(1)
        f.seek(offset)
        f.write(bytes([original[0] ^ (1 << bit)]))
    try:
        read_gguf(model_copy)
    except HomefireError as exc:
        one_line(exc)
    finally:
        with model_copy.open("r+b") as f:
            f.seek(offset)
            f.write(original)


# ----- settings file -----------------------------------------------------------------------------------


@FUZZ
@given(text=st.text(max_size=300))
@example(text="temperature = nan\n")
@example(text="n_ctx = 1e999\n")
@example(text='model = ""\n')
def test_any_settings_file_loads_or_is_a_clear_error(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))  # lone surrogates make invalid UTF-8: also a case
    try:
        loaded = cfg.load_config(path)
    except HomefireError as exc:
        one_line(exc)
        return
    cfg.save_config(loaded, path)
    assert cfg.load_config(path) == loaded  # whatever loads, saves and loads the same


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# What each setting allows, written out here from README's settings and not from the code under test: a value
# is accepted exactly when this says so, so removing (or loosening) a check fails the test.
ALLOWED = {
    "model": lambda v: v is None or (isinstance(v, str) and bool(v.strip())),
    "system_prompt": lambda v: isinstance(v, str),
    "temperature": lambda v: v is None or (_number(v) and 0 <= v <= 2),
    "n_ctx": lambda v: isinstance(v, int) and not isinstance(v, bool) and 256 <= v <= 131072,
    "threads": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 256),
    "guard": lambda v: v in ("relaxed", "normal", "strict", "off"),
    "theme": lambda v: v in ("homefire-dark", "homefire-light"),
    "sidebar": lambda v: isinstance(v, bool),
}
EDGES = st.sampled_from(
    [
        None,
        True,
        0,
        1,
        2,
        255,
        256,
        257,
        131072,
        131073,
        -1,
        2.0,
        2.0001,
        0.5,
        float("nan"),
        "",
        " ",
        "normal",
        "homefire-light",
        "off",
        "x",
    ]
)


@FUZZ
@given(values=st.dictionaries(st.sampled_from(sorted(ALLOWED)), JSONISH | EDGES, max_size=4))
@example(values={"temperature": 5})
@example(values={"n_ctx": True})
@example(values={"threads": 0})
def test_any_setting_value_is_checked(values: dict[str, object]) -> None:
    assert set(ALLOWED) == {f.name for f in cfg.fields(cfg.UserConfig)}  # a new setting needs its rule here
    valid = all(ALLOWED[k](v) for k, v in values.items())
    try:
        changed = cfg.UserConfig().changed(**values)
    except HomefireError as exc:
        one_line(exc)
        assert not valid, f"{values} is allowed but was refused: {exc}"
        return
    assert valid, f"{values} was accepted"
    for key, value in values.items():
        got = getattr(changed, key)
        assert got == (value.strip() if key in ("model", "system_prompt") and value else value), (key, value, got)


# ----- cartridge manifests -----------------------------------------------------------------------------


@FUZZ
@given(manifest=JSONISH, extra=st.dictionaries(st.text(max_size=10), JSONISH, max_size=6))
@example(manifest={"format": C.FORMAT}, extra={})  # found by this test: the listing crashed on missing keys
def test_any_manifest_loads_lists_or_is_a_clear_error(
    homefire_home: Path, capsys: pytest.CaptureFixture[str], manifest: object, extra: dict[str, object]
) -> None:
    if isinstance(manifest, dict) and extra:
        manifest = {"format": C.FORMAT, **extra}
    folder = C.cartridges_dir() / "fuzzed"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    try:
        cart = C.load("fuzzed")
        C.status(cart)
        cart.tokens, cart.kv_type, cart.chunks  # noqa: B018
    except HomefireError as exc:
        one_line(exc)
    assert main(["cartridge", "list"]) in (0, 1)
    capsys.readouterr()


# ----- memory import files -----------------------------------------------------------------------------


@FUZZ
@given(content=JSONISH.map(json.dumps) | st.text(max_size=200))
@example(content='{"facts": [{"text": 5}]}')
@example(content='[{"pinned": true}]')
def test_any_import_file_imports_or_is_a_clear_error(homefire_home: Path, content: str) -> None:
    from homefire.memory import Memory

    path = homefire_home / "import.json"
    homefire_home.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8", errors="replace")
    memory = Memory()
    try:
        memory.import_facts(path)
    except HomefireError as exc:
        one_line(exc)
    finally:
        memory.close()


# ----- command line ------------------------------------------------------------------------------------

# Command lines shaped like real ones, so most get past argparse into the commands themselves (a bad id, a
# name that does not exist, a path that is not there); a few are left for argparse to refuse.
TEXT = st.text(max_size=16) | st.sampled_from(["", "-", "--", "x" * 300, "../..", "é", "\x00", "a b"])
NUMBER = st.integers(min_value=-3, max_value=10**20).map(str) | st.sampled_from(["1", "2", "0"])
MODE = st.sampled_from(["hybrid", "text", "vector", "nope"])
FORMAT = st.sampled_from(["md", "json", "nope"])
STRICTNESS = st.sampled_from(["relaxed", "normal", "strict", "paranoid"])
# A path inside the empty working folder ('-' would read the test's stdin; '..' or a '/' would reach files that
# are there, which is a real build, not bad input).
LOCAL = TEXT.filter(lambda t: "/" not in t and t.strip() not in ("..", "-"))
SHAPES = {
    "models": [["list"], ["info", TEXT], ["verify", TEXT], ["rm", TEXT]],
    "cartridge": [["list"], ["info", TEXT], ["rm", TEXT], ["rebuild", TEXT], ["build", TEXT, LOCAL]],
    "history": [
        ["list", "--limit", NUMBER],
        ["search", TEXT, "--mode", MODE, "--limit", NUMBER],
        ["show", NUMBER],
        ["export", NUMBER, "--format", FORMAT],
        ["rename", NUMBER, TEXT],
        ["rm", NUMBER],
    ],
    "memory": [
        ["list"],
        ["add", TEXT],
        ["edit", NUMBER, TEXT],
        ["pin", NUMBER],
        ["unpin", NUMBER],
        ["forget", NUMBER],
        ["export", "--format", FORMAT],
        ["import", LOCAL],
        ["wipe"],
        ["rekey"],
        ["decrypt"],
    ],
    "guard": [["eval", LOCAL], ["check", "--strictness", STRICTNESS, LOCAL]],
}


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    first = draw(st.sampled_from(sorted(SHAPES)))
    shape = draw(st.sampled_from(SHAPES[first]))
    words = [first] + [w if isinstance(w, str) else draw(w) for w in shape]
    if draw(st.integers(0, 9)) == 0:  # now and then a stray word for argparse to refuse
        words.insert(draw(st.integers(1, len(words))), draw(LOCAL))
    return words


def said_in_one_line(code: int, err: str) -> None:
    """A failure is one `homefire: ...` line, with whatever the user typed escaped (a carriage return in a name
    must not start a new line); argparse's refusals are its usage line and one error line."""
    assert "Traceback" not in err, err
    if code == 2 and err.startswith("usage:"):
        assert err.endswith("\n") and ": error: " in err.rstrip("\n").split("\n")[-1], err
    elif code == 1 and err == "nothing found\n":  # `history search` finding nothing, like grep
        pass
    elif code != 0:
        assert err.startswith("homefire: ") and err.endswith("\n") and len(err.splitlines()) == 1, err


@FUZZ
@given(words=command_lines())
@example(words=["history", "show", "99999999999999999999"])  # found by this test: an OverflowError traceback
@example(words=["cartridge", "info", "\r"])  # found by this test: the carriage return split the error line
@example(words=["guard", "eval", "\x00"])  # found by this test: ValueError (embedded null byte)
@example(words=["memory", "import", "\x00"])  # found by this test: ValueError (embedded null byte)
@example(words=["models", "info", "x" * 300])  # found by this test: OSError (file name too long)
@example(words=["cartridge", "build", "ok", "\x00"])
@example(words=["models", "info", "../.."])
def test_any_command_line_ends_in_one_line_not_a_traceback(
    homefire_home: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], words: list[str]
) -> None:
    import os

    os.chdir(tmp_path_factory.mktemp("cwd"))  # relative paths the fuzz makes up point into an empty folder
    try:
        with mock.patch.object(sys, "stdin", io.StringIO("")):  # a command that reads stdin finds it empty
            code = main(words)
    except SystemExit as exit_:  # argparse refused the command line
        code = int(exit_.code or 0)
        assert code == 2, words
    said_in_one_line(code, capsys.readouterr().err)


# The same in a real process, where an exception anywhere (a thread, an exit handler, a library printing its
# own) would show on stderr: handlers reached with bad input, each answering in one line.
BAD_COMMAND_LINES = [
    ["history", "show", "99999999999999999999"],
    ["memory", "edit", "7", "User likes tea."],
    ["memory", "pin", "-1"],
    ["models", "info", "../../etc/passwd"],
    ["cartridge", "info", "a/b"],
    ["cartridge", "build", "notes", "missing.md"],
    ["guard", "eval", "missing.jsonl"],
]


@pytest.mark.parametrize("words", BAD_COMMAND_LINES, ids=lambda w: " ".join(w)[:40])
def test_bad_command_lines_in_a_real_process_say_one_line(
    homefire_home: Path, tmp_path: Path, words: list[str]
) -> None:
    import subprocess

    from .conftest import cli_env, homefire_cmd

    run = subprocess.run(
        homefire_cmd(*words), env=cli_env(homefire_home), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 1, run.stderr
    said_in_one_line(run.returncode, run.stderr)


def test_every_command_the_parser_knows_is_routed_to_it() -> None:
    """`homefire WORD` opens the chat app unless WORD is a known command: a command added to the parser but not
    to that list would silently open the chat instead."""
    from homefire import cli
    from homefire.guard.cli import cmd_guard
    from homefire.memory_cli import cmd_history, cmd_memory
    from homefire.web.cli import cmd_serve

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    assert set(sub.choices) == set(cli._COMMANDS)
    handlers = {
        "chat": cli.cmd_chat,
        "ask": cli.cmd_ask,
        "models": cli.cmd_models,
        "cartridge": cli.cmd_cartridge,
        "guard": cmd_guard,
        "history": cmd_history,
        "memory": cmd_memory,
        "serve": cmd_serve,
    }
    lines = {"chat": [], "ask": ["hi"], "models": ["list"], "cartridge": ["list"], "guard": ["check", "hi"]}
    lines |= {"history": ["list"], "memory": ["list"], "serve": ["--web"]}
    for command, handler in handlers.items():
        assert parser.parse_args([command, *lines[command]]).func is handler, command


# ----- chat template input -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_template() -> ChatTemplate:
    from homefire.models.store import embedded_model

    return ChatTemplate(read_gguf(embedded_model().path).chat_template)


@FUZZ
@given(texts=st.lists(st.text(max_size=80), min_size=1, max_size=5))
@example(texts=["{{ 7*7 }} {% for x in range(3) %}x{% endfor %}", "{{ messages[0].__class__ }}", "<|im_end|>"])
def test_message_text_is_data_never_template_code(model_template: ChatTemplate, texts: list[str]) -> None:
    roles = ["user", "assistant"]
    messages = [{"role": "system", "content": "be brief"}] + [
        {"role": roles[i % 2], "content": t} for i, t in enumerate(texts)
    ]
    for template in (model_template, ChatTemplate(None)):
        out = template.render(messages)
        for t in texts:
            assert t in out  # verbatim: "{{ 7*7 }}" stays "{{ 7*7 }}", never 49
