"""Writes a Hugging Face `tokenizer.json` for a GGUF model's GPT-2-style BPE tokenizer
(the vocabulary, merges and control tokens GGUF files carry), so Warden can count the
model's tokens with `models.NAME.tokenizer`. Usage: gguf-tokenizer.py MODEL.gguf OUT.json"""

import sys

from gguf import GGUFReader
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

CONTROL = 3  # llama.cpp's token type for special (control) tokens


def strings(field):
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def main(gguf_path: str, out: str) -> None:
    fields = GGUFReader(gguf_path).fields
    model = bytes(fields["tokenizer.ggml.model"].parts[-1]).decode()
    if model != "gpt2":
        sys.exit(f"{gguf_path}: tokenizer model {model!r} is not a GPT-2 style BPE")
    tokens = strings(fields["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in strings(fields["tokenizer.ggml.merges"])]
    kinds = [int(fields["tokenizer.ggml.token_type"].parts[i][0]) for i in fields["tokenizer.ggml.token_type"].data]
    tokenizer = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    # llama.cpp's `smollm` pre-tokenizer: single digits, then GPT-2's byte-level split.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([t for t, k in zip(tokens, kinds) if k == CONTROL])
    tokenizer.save(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
