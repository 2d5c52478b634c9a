"""Download a GGUF from a Hugging Face hub: resumable, with progress, sha256-verified.

The only module in homefire that touches the network, and only when the user asks. The
file is fetched into a staging folder (where huggingface-hub resumes an interrupted
transfer), checked against the sha256 the hub publishes for it, and only then moved over
the installed copy, so a bad download never replaces a good file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import config
from ..errors import ChecksumMismatch, DownloadError, ModelError
from . import catalogue
from .gguf import read_gguf
from .store import Model, Progress, save_pulled, sha256_file

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@contextlib.contextmanager
def _online(xet_cache: Path) -> Iterator[None]:
    """huggingface-hub reads HF_HUB_OFFLINE once at import; lift it for this call only.

    hf-xet (the hub's chunked transfer for large files) keeps a chunk cache under ~/.cache/huggingface/xet
    unless HF_XET_CACHE says otherwise: point it into the data dir for the transfer, and remove it after,
    so nothing is written outside the data dir.
    """
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE, os.environ.get("HF_XET_CACHE")
    constants.HF_HUB_OFFLINE = False
    os.environ["HF_XET_CACHE"] = str(xet_cache)
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before[0]
        if before[1] is None:
            os.environ.pop("HF_XET_CACHE", None)
        else:
            os.environ["HF_XET_CACHE"] = before[1]
        shutil.rmtree(xet_cache, ignore_errors=True)


def _tqdm_class(progress: Progress | None) -> Any:
    if progress is None:
        return None
    report = progress
    from tqdm.auto import tqdm

    class _Callback(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            self.n += n or 0
            report(int(self.n), int(self.total or 0))
            return None

    return _Callback


def model_name(repo: str, filename: str) -> str:
    for entry in catalogue.CATALOGUE:
        if (entry.repo, entry.filename) == (repo, filename):
            return entry.name
    return Path(filename).stem.lower()


def source(repo: str, filename: str | None) -> tuple[str, str]:
    """The hub repo and file to fetch, from a catalogue name or a repo and file; checked before any network."""
    if filename is None:
        entry = catalogue.find(repo)
        if entry is None:
            raise ModelError(
                f"'{repo}' is not in the catalogue: give a repo and a file, e.g. `homefire models pull "
                "Qwen/Qwen2.5-0.5B-Instruct-GGUF qwen2.5-0.5b-instruct-q4_k_m.gguf`"
            )
        repo, filename = entry.repo, entry.filename
    if not filename.lower().endswith(".gguf"):
        raise ModelError(f"'{filename}' is not a .gguf file: homefire runs GGUF models")
    return repo, filename


def pull(
    repo: str,
    filename: str | None = None,
    revision: str | None = None,
    progress: Progress | None = None,
    endpoint: str | None = None,
) -> Model:
    """Fetch REPO/FILENAME (or a catalogue name) and install it as a verified model."""
    repo, filename = source(repo, filename)
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    name = model_name(repo, filename)
    models = config.models_dir()
    staging = models / ".partial" / name
    target = models / f"{name}.gguf"
    where = f"{repo}/{filename}" + (f"@{revision}" if revision else "")
    try:
        with _online(models / ".partial" / ".xet-cache"):
            url = hf_hub_url(repo, filename, revision=revision, endpoint=endpoint)
            meta = get_hf_file_metadata(url, token=False, endpoint=endpoint)
            expected = (meta.etag or "").lower()
            if not _SHA256.match(expected):
                raise DownloadError(f"the hub gives no sha256 for {where}, so it cannot be verified: not installed")
            free = shutil.disk_usage(models).free
            if meta.size and meta.size > free:
                raise DownloadError(
                    f"{where} needs {meta.size / 1e9:.2f} GB but only {free / 1e9:.2f} GB is free in {models}"
                )
            staging.mkdir(mode=0o700, parents=True, exist_ok=True)
            fetched = Path(
                hf_hub_download(
                    repo,
                    filename,
                    revision=meta.commit_hash or revision,
                    local_dir=staging,
                    endpoint=endpoint,
                    token=False,
                    tqdm_class=_tqdm_class(progress),
                )
            )
    except LocalEntryNotFoundError as exc:
        raise DownloadError(
            f"could not reach the hub at {endpoint or 'huggingface.co'}: check the connection, "
            "then run the same pull again"
        ) from exc
    except (RepositoryNotFoundError, RevisionNotFoundError, RemoteEntryNotFoundError) as exc:
        raise DownloadError(f"{where} was not found on the hub: check the repo, file name and revision") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "no answer"
        if status == 404:
            raise DownloadError(f"{where} was not found on the hub: check the repo, file name and revision") from exc
        raise DownloadError(f"download of {where} failed (HTTP {status}): try again later") from exc
    except OSError as exc:
        raise DownloadError(f"download of {where} failed ({exc}): run the same pull again (it starts over)") from exc
    except Exception as exc:  # httpx errors (connection reset, timeouts) do not share a base we can import lazily
        if exc.__class__.__name__ in ("ConnectError", "ConnectTimeout"):
            raise DownloadError(
                f"could not reach the hub at {endpoint or 'huggingface.co'}: check the connection, "
                "then run the same pull again"
            ) from exc
        if exc.__class__.__module__.startswith(("httpx", "httpcore")):
            raise DownloadError(
                f"download of {where} was interrupted ({exc.__class__.__name__}): "
                "run the same pull again (it starts over)"
            ) from exc
        raise
    digest = sha256_file(fetched)
    if digest != expected:
        fetched.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"{where} arrived damaged (sha256 {digest[:12]}… expected {expected[:12]}…): "
            "nothing was installed; pull it again"
        )
    read_gguf(fetched)
    os.chmod(fetched, 0o600)
    os.replace(fetched, target)
    shutil.rmtree(staging, ignore_errors=True)
    model = Model(name, target, "pulled", expected, repo, filename, meta.commit_hash or revision)
    save_pulled(model)
    return model
