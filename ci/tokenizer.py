"""A real Hugging Face tokenizer.json for the tests, made offline.

    python3 ci/tokenizer.py train CORPUS OUT_DIR   # byte-level BPE, 2,000 merges
    python3 ci/tokenizer.py count OUT_DIR          # stdin: JSON list of texts;
                                                   # stdout: their token counts

Trained with Hugging Face's `tokenizers` (PyPI, installed by
ci/install.sh) on a text of the caller's, and saved as a model's folder is
laid out (OUT_DIR/tokenizer.json), the way GuideLLM or vLLM read one.
"""

import json
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers


def train(corpus, out_dir):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    tok.train([corpus], trainer)
    tok.save(f"{out_dir}/tokenizer.json")


def count(out_dir):
    tok = Tokenizer.from_file(f"{out_dir}/tokenizer.json")
    texts = json.load(sys.stdin)
    print(json.dumps([len(tok.encode(t, add_special_tokens=False).ids) for t in texts]))


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "count":
        count(sys.argv[2])
    else:
        sys.exit(f"usage: {sys.argv[0]} train CORPUS OUT_DIR | count OUT_DIR")
