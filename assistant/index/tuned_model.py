"""The bundled model tuned for citizens' questions: LoRA weights shipped in the package (`index/tuned/`), merged
once into the materialised e5-small. `tuned.json` records how they were trained, probe vectors to check them by,
and the relevance judge fitted for the tuned model's scores."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import ModelError

log = logging.getLogger(__name__)

WEIGHTS = "lora.safetensors"
META = "tuned.json"


def folder() -> Path:
    return Path(str(resources.files("assistant.index").joinpath("tuned")))


def available() -> bool:
    return (folder() / WEIGHTS).exists() and (folder() / META).exists()


@lru_cache(maxsize=1)
def adapter_id() -> str:
    """Names the shipped weights (the digest of the file): part of the index fingerprint."""
    return hashlib.sha256((folder() / WEIGHTS).read_bytes()).hexdigest()[:12]


@lru_cache(maxsize=1)
def meta() -> dict[str, Any]:
    return json.loads((folder() / META).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def merged_state(base: dict[str, np.ndarray], adapter: dict[str, np.ndarray], scaling: float) -> dict[str, np.ndarray]:
    """The base weights with each LoRA pair added: W + scaling · B·A (for `<module>.lora_A` / `.lora_B`)."""
    state = dict(base)
    for name in sorted(k[: -len(".lora_A")] for k in adapter if k.endswith(".lora_A")):
        key = f"{name}.weight"
        if key not in state:
            raise ModelError(f"the tuned weights name {name!r}, which the base model lacks", "reinstall the package")
        delta = adapter[f"{name}.lora_B"].astype(np.float32) @ adapter[f"{name}.lora_A"].astype(np.float32)
        state[key] = (state[key].astype(np.float32) + scaling * delta).astype(np.float32)
    return state


def materialize_tuned(base: Path, target: Path) -> Path:
    """Write the tuned sentence-transformers folder at `target` (atomically) from the base folder, unless it is
    there already."""
    marker = target / "policy_assistant.json"
    if marker.exists() and json.loads(marker.read_text()).get("adapter") == adapter_id():
        return target
    from safetensors.numpy import load_file, save_file

    log.info("first use: merging the shipped tuning into the bundled model (about 470 MB more, once) in %s …", target)
    work = Path(tempfile.mkdtemp(prefix=".e5t-", dir=target.parent))
    try:
        shutil.copytree(base, work, dirs_exist_ok=True)
        state = merged_state(load_file(str(base / "model.safetensors")), load_file(str(folder() / WEIGHTS)),
                             float(meta()["scaling"]))
        save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(work / "model.safetensors"))
        (work / "policy_assistant.json").write_text(json.dumps({"adapter": adapter_id(), "base": base.name}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target
