"""Tiny real Hugging Face models built from configs (random weights, local vocab) for offline tests.

Each `make_tiny_*(dir)` saves a model and its processor / tokenizer with `save_pretrained` into
`dir` and returns it; the directory then loads offline with AutoModel / AutoProcessor /
AutoTokenizer / AutoImageProcessor (or CLIPModel / CLIPProcessor). Images are 32 px so a forward
pass costs milliseconds. Session-scoped fixtures (`tiny_clip_dir`, `tiny_vit_dir`,
`tiny_resnet_dir`, `tiny_bert_dir`) build each model once per test session; tests/conftest.py
imports them, so every test can ask for them by name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

IMAGE_SIZE = 32
SEED = 0

# Words the tiny tokenizers know as whole tokens; anything else falls back to characters.
_WORDS = (
    "a photo of the cat dog car bird plane ship truck horse frog deer red green blue "
    "small large image picture text hello world embedding dataset model label"
).split()


def _bert_vocab() -> dict[str, int]:
    """A WordPiece vocab: specials, whole words, single characters and their ## continuations."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
    tokens += _WORDS + chars + ["##" + c for c in chars]
    seen: dict[str, int] = {}
    for tok in tokens:
        seen.setdefault(tok, len(seen))
    return seen


def _byte_symbols() -> list[str]:
    """GPT-2 / CLIP's reversible byte -> printable unicode table (256 symbols)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\u00a1"), ord("\u00ac") + 1))
        + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def _clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE vocab like CLIP's: every byte symbol (+ '</w>'), a few words, merges."""
    symbols = _byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols]
    merges: list[tuple[str, str]] = []
    for word in ("the", "cat", "dog", "photo"):
        # Merge left to right: "t h" -> "th", "th e</w>" -> "the</w>".
        left = word[0]
        for i, ch in enumerate(word[1:], start=1):
            right = ch + ("</w>" if i == len(word) - 1 else "")
            merges.append((left, right))
            left = left + right
            tokens.append(left)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab: dict[str, int] = {}
    for tok in tokens:
        vocab.setdefault(tok, len(vocab))
    return vocab, merges


def _seed() -> None:
    import torch

    torch.manual_seed(SEED)


def make_tiny_clip(directory: Path | str) -> Path:
    """A CLIP with 32-px images, 2-layer towers, projection dim 16; saved with its CLIPProcessor."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    vocab, merges = _clip_vocab()
    # tokenizers >= 0.22 wants merge pairs as tuples; transformers annotates list[str].
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)  # type: ignore[arg-type]
    text_cfg = dict(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=32,
        bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    vision_cfg = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=IMAGE_SIZE, patch_size=8,
    )
    config = CLIPConfig(text_config=text_cfg, vision_config=vision_cfg, projection_dim=16)
    _seed()
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def make_clip_b32_shaped(directory: Path | str) -> Path:
    """A CLIP with ViT-B/32's exact shapes (vision: hidden 768, 12 layers, patch 32, 224 px;
    text: hidden 512, 12 layers; projection 512) and random weights: same cost as the real
    openai/clip-vit-base-patch32, for benchmarks. Saved with a 224-px CLIPProcessor."""
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    vocab, merges = _clip_vocab()
    # tokenizers >= 0.22 wants merge pairs as tuples; transformers annotates list[str].
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)  # type: ignore[arg-type]
    text_cfg = dict(
        vocab_size=len(vocab), hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
        num_attention_heads=8, max_position_embeddings=77,
        bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    vision_cfg = dict(
        hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        image_size=224, patch_size=32,
    )
    config = CLIPConfig(text_config=text_cfg, vision_config=vision_cfg, projection_dim=512)
    _seed()
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}
    )
    model.save_pretrained(out)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def make_tiny_vit(directory: Path | str) -> Path:
    """A ViT (2 layers, hidden 32, patch 8 on 32 px) with a pooler; saved with ViTImageProcessor."""
    from transformers import ViTConfig, ViTImageProcessorPil, ViTModel

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config = ViTConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=IMAGE_SIZE, patch_size=8,
    )
    _seed()
    model = ViTModel(config, add_pooling_layer=True).eval()
    processor = ViTImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def make_tiny_resnet(directory: Path | str) -> Path:
    """A ResNet (2 stages, widths 8/16): pooler_output is 16-d; saved with its image processor."""
    from transformers import ConvNextImageProcessorPil, ResNetConfig, ResNetModel

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config = ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
        downsample_in_first_stage=False,
    )
    _seed()
    model = ResNetModel(config).eval()
    # microsoft/resnet-50 ships a ConvNextImageProcessor; mirror that.
    processor = ConvNextImageProcessorPil(size={"shortest_edge": IMAGE_SIZE}, crop_pct=1.0)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def make_tiny_bert(directory: Path | str) -> Path:
    """A BERT text encoder (2 layers, hidden 32) with a local WordPiece vocab; saved with tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizer

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    vocab = _bert_vocab()
    tokenizer = BertTokenizer(vocab=vocab)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=64, pad_token_id=vocab["[PAD]"],
    )
    _seed()
    model = BertModel(config).eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny CLIP (image + text towers, 16-d joint space), built once per session."""
    return make_tiny_clip(tmp_path_factory.mktemp("tiny-clip") / "tiny-clip")


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny ViT image backbone (32-d pooler output), built once per session."""
    return make_tiny_vit(tmp_path_factory.mktemp("tiny-vit") / "tiny-vit")


@pytest.fixture(scope="session")
def tiny_resnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny ResNet image backbone (16-d pooled output), built once per session."""
    return make_tiny_resnet(tmp_path_factory.mktemp("tiny-resnet") / "tiny-resnet")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny BERT text encoder (32-d mean-pooled output), built once per session."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert") / "tiny-bert")
