"""Bad input, generated (hypothesis): every case ends in success or a HomefireError with a one-line
message, never another exception or a hang. Crashers found are kept below as explicit examples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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


@FUZZ
@given(values=st.dictionaries(st.sampled_from([f.name for f in cfg.fields(cfg.UserConfig)]), JSONISH, max_size=4))
def test_any_setting_value_is_checked(values: dict[str, object]) -> None:
    try:
        cfg.UserConfig().changed(**values)
    except HomefireError as exc:
        one_line(exc)


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

SAFE = ["models", "cartridge", "history", "memory"]
WORDS = [
    "list",
    "info",
    "show",
    "rm",
    "verify",
    "export",
    "rename",
    "edit",
    "forget",
    "--format",
    "json",
    "md",
    "--limit",
    "-1",
    "0",
    "99999999999999999999",
    "",
    "-",
    "--",
    "--help",
    "x" * 300,
    "../..",
    "\x00",
    "é",
]


@FUZZ
@given(first=st.sampled_from(SAFE), rest=st.lists(st.sampled_from(WORDS) | st.text(max_size=12), max_size=4))
def test_any_command_line_ends_in_a_message_not_a_traceback(
    homefire_home: Path, capsys: pytest.CaptureFixture[str], first: str, rest: list[str]
) -> None:
    try:
        code = main([first, *rest])
    except SystemExit as exit_:  # argparse: usage error (2) or --help (0)
        assert exit_.code in (0, 2)
        capsys.readouterr()
        return
    assert isinstance(code, int)
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_the_parser_knows_every_command() -> None:
    parser = build_parser()
    for words in (["ask", "hi"], ["chat"], ["models", "list"], ["cartridge", "list"], ["memory", "list"]):
        assert parser.parse_args(words).func


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
