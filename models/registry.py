"""Adapters by name, as the deployment file names them; each loaded once per process.

Loading a model costs seconds; an episode must not pay it. Adapters are cached by
(kind, adapter, parameters), so a second episode in the same process reuses them.
"""
from __future__ import annotations

import importlib
import json
import threading
from typing import Any

ADAPTERS: dict[str, dict[str, str]] = {
    "script": {
        "llama_cpp": "models.script.llama:LlamaCppWriter",
        "openai_chat": "models.script.openai_chat:OpenAIChatWriter",
    },
    "speech": {"piper": "models.speech.piper:PiperSpeech"},
    "video": {
        "avatar2d": "models.video.avatar2d:Avatar2D",
        # The portrait look; needs the neural extra only for its neural tiers.
        "lipsync": "models.video.lipsync.animator:PortraitAnimator",
    },
}

_cache: dict[tuple[str, str, str], Any] = {}
_lock = threading.Lock()


class AdapterError(ValueError):
    """An adapter name or its parameters are wrong; the message says what is allowed."""


def adapter_class(kind: str, adapter: str) -> type:
    try:
        target = ADAPTERS[kind][adapter]
    except KeyError:
        allowed = sorted(ADAPTERS.get(kind, {}))
        raise AdapterError(f"unknown {kind} adapter {adapter!r}; allowed: {allowed}") from None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def load_adapter(kind: str, adapter: str, params: dict[str, Any]) -> Any:
    key = (kind, adapter, json.dumps(params, sort_keys=True, default=str))
    with _lock:
        if key in _cache:
            return _cache[key]
        cls = adapter_class(kind, adapter)
        try:
            instance = cls(**params)
        except TypeError as exc:
            raise AdapterError(f"{kind} adapter {adapter!r}: bad parameters: {exc}") from None
        _cache[key] = instance
        return instance
