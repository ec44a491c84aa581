"""Build a Llama model with random weights, for testing and benchmarking the ExLlamaV2 backend where no real
model can be downloaded.

    python bench/gpu/make_random_llama.py OUT_DIR           # Llama-3.2-1B's shape: 1.2 B parameters, 2.5 GB
    python bench/gpu/make_random_llama.py OUT_DIR --tiny    # 4 layers of 512: for correctness tests

The folder is what a Hugging Face FP16 checkpoint holds: config.json, generation_config.json, model.safetensors,
tokenizer.json (a byte-level BPE trained here on made-up text) and tokenizer_config.json with a Llama 3 style chat
template. Chat turns end with <|eot_id|>, which only generation_config.json lists as an EOS token, as Llama 3's
does. The text such a model writes is noise; its speed and its numerics are a real model's.

Needs torch, transformers and tokenizers; runs on the CPU too.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

# Llama-3.2-1B's config.json, but for the vocabulary, which is smaller in the tokenizer than in the model: the
# model keeps 128256 rows so that its output layer costs what the real one does.
LLAMA_3_2_1B: dict[str, Any] = {
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
    "rope_parameters": {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
}
TINY = LLAMA_3_2_1B | {
    "hidden_size": 512,
    "intermediate_size": 1536,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "vocab_size": 8192,
}

TOKENIZER_VOCAB = 8192
BOS, END_OF_TEXT, START_HEADER, END_HEADER, END_OF_TURN = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)
# The trainer gives special tokens the first ids, in this order.
SPECIAL_TOKENS = [BOS, END_OF_TEXT, START_HEADER, END_HEADER, END_OF_TURN]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] }}<|eot_id|>"
    "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
_SYLLABLES = [consonant + vowel for consonant in "bdgklmnprstvz" for vowel in "aeiou"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--tiny", action="store_true", help="a small model for correctness tests")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    make_random_llama(args.out_dir, tiny=args.tiny, seed=args.seed)
    print(f"wrote {args.out_dir}")


def make_random_llama(out_dir: Path, *, tiny: bool = False, seed: int = 0) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(seed)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
    _write_json(
        out_dir / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": BOS,
            "eos_token": END_OF_TURN,
            "add_bos_token": True,
            "model_max_length": LLAMA_3_2_1B["max_position_embeddings"],
            "clean_up_tokenization_spaces": False,
            "chat_template": CHAT_TEMPLATE,
        },
    )

    torch.manual_seed(seed)
    shape = TINY if tiny else LLAMA_3_2_1B
    config = transformers.LlamaConfig(**shape, bos_token_id=ids[BOS], eos_token_id=ids[END_OF_TEXT])
    model = transformers.LlamaForCausalLM(config).to(torch.float16)
    model.save_pretrained(out_dir)
    _write_json(
        out_dir / "generation_config.json",
        {"bos_token_id": ids[BOS], "eos_token_id": [ids[END_OF_TEXT], ids[END_OF_TURN]]},
    )
    _add_legacy_rope_fields(out_dir / "config.json")


def _train_tokenizer(seed: int) -> Any:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        special_tokens=SPECIAL_TOKENS,
        # Every byte, so that any text encodes.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_made_up_text(random.Random(seed)), trainer)
    return tokenizer


def _made_up_text(rng: random.Random, sentences: int = 50_000) -> list[str]:
    """Sentences of made-up words, with digits and punctuation, so that BPE learns words, spaces and numbers."""
    words = ["".join(rng.choices(_SYLLABLES, k=rng.randint(1, 4))) for _ in range(5_000)]
    text = []
    for _ in range(sentences):
        sentence = " ".join(rng.choices(words, k=rng.randint(3, 15)))
        text.append(f"{sentence.capitalize()} {rng.randint(0, 999)}{rng.choice('.!?,;:')}\n")
    return text


def _add_legacy_rope_fields(config_path: Path) -> None:
    """transformers 5 writes rope_parameters; ExLlamaV2 0.3.2 reads rope_theta and rope_scaling, and without them
    silently uses a theta of 10000 and no scaling. Both spellings name the same RoPE here."""
    config = json.loads(config_path.read_text())
    rope = dict(config.get("rope_parameters") or {})
    if "rope_theta" in rope:
        config["rope_theta"] = rope.pop("rope_theta")
    if rope.get("rope_type", "default") != "default":
        config["rope_scaling"] = rope
    _write_json(config_path, config)


def _write_json(path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n")


if __name__ == "__main__":
    main()
