"""Text for self-consuming language models: corpora, tokenizers, and blocks of token ids.

A text dataset is, for the loop, an integer array of shape (n_blocks, block_len): each row a block
of consecutive tokens (Shumailov et al. 2024 cut wikitext-2 into blocks of 64 tokens), so the
policies mix real and synthetic blocks exactly as they mix points. ``Dataset.kind`` is ``"text"``
and ``Dataset.params`` holds the tokenizer (``tokenizer``: its JSON, which a run writes into its
directory), ``vocab_size``, ``block_len`` and the special ids.

Sources:

- ``lee``: the Lee news corpus (300 + 50 short Australian news articles, ~64k words) that ships
  inside gensim's test data, read as files (gensim's modules are never imported);
- ``wiki500``: the first 250 articles of a stemmed English Wikipedia dump, also in gensim's
  test data (~330k words, one article a line);
- ``text``: your own text at ``path``: a ``.txt`` file, a folder of them, or wikitext-2 raw (a
  folder with ``wiki.train.raw`` and ``wiki.test.raw``: its official split is kept);
  TinyStories' ``.txt`` files split on ``<|endoftext|>``;
- ``zipf``: i.i.d. tokens from a Zipf law p(i) ∝ (i + 1)^-s on ``vocab_size`` types, the
  known distribution the theory (:mod:`autophagy.theory.text`) speaks about.

The held-out split is by *document* (as the image sets split by image): documents are shuffled
with ``seed``, the first ones make the test text (``test_fraction`` of the words), then the pool
(``n_pool`` blocks' worth), the rest is the training text. The tokenizer is trained on the
training text only (``tokenizer: word``, words and punctuation, lower-cased, the ``vocab_size``
most frequent; ``tokenizer: bpe``, byte-level BPE with ``vocab_size`` tokens, both from HF
``tokenizers``), or read from a folder or ``tokenizer.json`` (a pretrained model's own).
Trained tokenizers are cached in ``$AUTOPHAGY_CACHE/tokenizers`` by a hash of the training text
and the settings. Each document is followed by ``<eos>``; the token streams of each split are
cut into blocks.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from autophagy.atomic import atomic_write_text
from autophagy.data.base import Dataset
from autophagy.data.points import check_int, check_number
from autophagy.errors import InputError

SPECIALS = ("<unk>", "<eos>")
DEFAULT_BLOCK_LEN = 32
DEFAULT_VOCAB = 2000
DEFAULT_TEST_FRACTION = 0.1
TEXT_SUFFIXES = (".txt", ".raw", ".tokens")
WIKITEXT = ("wiki.train.raw", "wiki.test.raw")
GENSIM_CORPORA = {
    "lee": ("lee_background.cor", "lee.cor"),
    "wiki500": ("head500.noblanks.cor",),
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt",
                   "merges.txt", "tokenizer.model", "spiece.model")
TEXT_EXTRA = "pip install 'autophagy[text]'"
CORPORA_EXTRA = "pip install 'autophagy[corpora]'"


# --- reading text -----------------------------------------------------------------------------


def read_text_file(path: Path, where: str = "data.path", fallback: str | None = None) -> str:
    """The UTF-8 text of ``path`` (else ``fallback``'s, when given: gensim's ``lee.cor`` is
    Latin-1); an empty or binary file is refused in one line."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"{where}: cannot read {str(path)!r}: {err.strerror}") from None
    if b"\x00" in raw[:65536]:
        raise InputError(f"{where}: {str(path)!r} is a binary file, not text; give a UTF-8 .txt")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        if fallback is not None:
            return raw.decode(fallback)
        raise InputError(f"{where}: {str(path)!r} is not UTF-8 text (byte {err.start}); "
                         "convert it to UTF-8") from None
    if not text.strip():
        raise InputError(f"{where}: {str(path)!r} is empty; give a file with some text")
    return text


def split_documents(text: str) -> list[str]:
    """Documents of a text: split on ``<|endoftext|>`` (TinyStories) when present, else on blank
    lines, else one a line."""
    if "<|endoftext|>" in text:
        parts = text.split("<|endoftext|>")
    else:
        parts = re.split(r"\n\s*\n", text)
        if len([p for p in parts if p.strip()]) < 2:
            parts = text.splitlines()
    return [p.strip() for p in parts if p.strip()]


def read_documents(path: str | os.PathLike) -> tuple[list[str], list[str] | None]:
    """(documents, official test documents or None) of a file or folder of text."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"data.path: {str(p)!r} does not exist")
    if p.is_file():
        return split_documents(read_text_file(p)), None
    if all((p / name).is_file() for name in WIKITEXT):
        train, test = (split_documents(read_text_file(p / name)) for name in WIKITEXT)
        return train, test
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in TEXT_SUFFIXES)
    if not files:
        raise InputError(f"data.path: no {'/'.join(TEXT_SUFFIXES)} files in {str(p)!r}")
    return [d for f in files for d in split_documents(read_text_file(f))], None


def gensim_data_folder() -> Path:
    """gensim's ``test/test_data`` folder, found without importing gensim."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"data.name: the packaged corpora are gensim's test data; {CORPORA_EXTRA}")
    return Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data"


def gensim_documents(corpus: str) -> list[str]:
    """The documents (one a line) of a corpus in gensim's test data."""
    folder = gensim_data_folder()
    docs: list[str] = []
    for name in GENSIM_CORPORA[corpus]:
        text = read_text_file(folder / name, "data.name", "latin-1")
        docs += [line.strip() for line in text.splitlines() if line.strip()]
    return docs


# --- tokenizers -------------------------------------------------------------------------------


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise InputError(f"data.options.tokenizer: needs the tokenizers package; {TEXT_EXTRA}"
                         ) from None
    return tokenizers


def _cache_root() -> Path:
    return Path(os.environ.get("AUTOPHAGY_CACHE") or Path.home() / ".cache" / "autophagy")


def train_tokenizer(documents: list[str], kind: str, vocab_size: int, min_count: int = 1):
    """A ``tokenizers.Tokenizer`` trained on ``documents``: ``word`` or byte-level ``bpe``.

    Cached by a hash of the documents and settings. Refuses a ``vocab_size`` the text cannot
    fill (fewer distinct words, or fewer BPE merges, than asked).
    """
    tk = _tokenizers()
    h = hashlib.sha256(json.dumps([kind, vocab_size, min_count, tk.__version__]).encode())
    for d in documents:
        h.update(d.encode() + b"\0")
    path = _cache_root() / "tokenizers" / f"{kind}-{h.hexdigest()[:24]}.json"
    if path.is_file():
        tokenizer = tk.Tokenizer.from_file(str(path))
    else:
        if kind == "word":
            tokenizer = tk.Tokenizer(tk.models.WordLevel(unk_token="<unk>"))
            tokenizer.normalizer = tk.normalizers.Sequence(
                [tk.normalizers.NFKC(), tk.normalizers.Lowercase()])
            tokenizer.pre_tokenizer = tk.pre_tokenizers.Whitespace()
            trainer = tk.trainers.WordLevelTrainer(
                vocab_size=vocab_size, min_frequency=min_count, special_tokens=list(SPECIALS),
                show_progress=False)
        else:
            tokenizer = tk.Tokenizer(tk.models.BPE(unk_token="<unk>"))
            tokenizer.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=True)
            tokenizer.decoder = tk.decoders.ByteLevel()
            trainer = tk.trainers.BpeTrainer(
                vocab_size=vocab_size, min_frequency=max(min_count, 2),
                special_tokens=list(SPECIALS), show_progress=False,
                initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())
        tokenizer.train_from_iterator(documents, trainer=trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, tokenizer.to_str())
    got = tokenizer.get_vocab_size()
    if got < vocab_size:
        what = "distinct words (with <unk>, <eos>)" if kind == "word" else "BPE tokens"
        raise InputError(f"data.options.vocab_size: {vocab_size} is larger than the "
                         f"{got} {what} the training text has; lower vocab_size to at most {got}")
    return tokenizer


def load_tokenizer(source: str):
    """A pretrained tokenizer: a ``tokenizer.json`` file, or a model folder (``transformers``'
    fast tokenizer of it, e.g. OPT's)."""
    tk = _tokenizers()
    p = Path(source).expanduser()
    if p.is_file():
        return tk.Tokenizer.from_file(str(p))
    if (p / "tokenizer.json").is_file():
        return tk.Tokenizer.from_file(str(p / "tokenizer.json"))
    if p.is_dir():
        if not any((p / f).is_file() for f in TOKENIZER_FILES):
            raise InputError(f"data.options.tokenizer: {str(p)!r} holds no tokenizer (none of "
                             f"{', '.join(TOKENIZER_FILES)}); give the pretrained model's folder")
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(p), use_fast=True).backend_tokenizer
        except ImportError:
            raise InputError(f"data.options.tokenizer: reading {str(p)!r} needs transformers; "
                             f"{TEXT_EXTRA}") from None
        except (OSError, ValueError) as err:
            raise InputError(f"data.options.tokenizer: {str(p)!r} holds no tokenizer "
                             f"({str(err).splitlines()[0]})") from None
    raise InputError(f"data.options.tokenizer: {source!r} is not 'word', 'bpe', a tokenizer.json "
                     "or a folder holding one")


def _eos_id(tokenizer) -> int:
    for name in ("<eos>", "</s>", "<|endoftext|>"):
        i = tokenizer.token_to_id(name)
        if i is not None:
            return int(i)
    return 0


def encode_blocks(tokenizer, documents: list[str], block_len: int) -> np.ndarray:
    """The documents' token ids, each document followed by the end-of-text id, cut into
    (n_blocks, block_len) int64 rows (the remainder dropped)."""
    eos = _eos_id(tokenizer)
    stream: list[int] = []
    for enc in tokenizer.encode_batch(documents, add_special_tokens=False):
        stream.extend(enc.ids)
        stream.append(eos)
    n = len(stream) // block_len
    return np.asarray(stream[: n * block_len], dtype=np.int64).reshape(n, block_len)


# --- the datasets -----------------------------------------------------------------------------


def _check_text_options(tokenizer: str, vocab_size: int, block_len: int, test_fraction: float):
    if not isinstance(tokenizer, str):
        raise InputError(f"data.options.tokenizer must be 'word', 'bpe' or a path, got "
                         f"{tokenizer!r}")
    check_int(vocab_size, "data.options.vocab_size", len(SPECIALS) + 1)
    check_int(block_len, "data.options.block_len", 2)
    check_number(test_fraction, "data.options.test_fraction", positive=True)
    if not test_fraction < 1:
        raise InputError(f"data.options.test_fraction must be in (0, 1), got {test_fraction!r}")


def _take_documents(docs: list[str], words: int) -> int:
    """How many leading documents hold at least ``words`` words (all of them at most)."""
    counts = np.cumsum([len(d.split()) for d in docs])
    return int(min(len(docs), np.searchsorted(counts, words) + 1)) if words > 0 else 0


def documents_dataset(
    name: str,
    documents: list[str],
    official_test: list[str] | None,
    *,
    n_train: int | None,
    n_test: int | None,
    n_pool: int,
    seed: int,
    tokenizer: str,
    vocab_size: int,
    block_len: int,
    test_fraction: float,
    min_count: int = 1,
    source: str = "",
) -> Dataset:
    """Split ``documents`` by document, train (or read) the tokenizer on the training text and
    cut every split into blocks (the module's rule)."""
    _check_text_options(tokenizer, vocab_size, block_len, test_fraction)
    rng = np.random.default_rng(seed)
    docs = [documents[i] for i in rng.permutation(len(documents))]
    if official_test is not None:
        test_docs = official_test
    else:
        total = sum(len(d.split()) for d in docs)
        k = _take_documents(docs, int(np.ceil(test_fraction * total)))
        if k >= len(docs):
            raise InputError(f"data.options.test_fraction: {test_fraction} leaves no training "
                             f"document of the {len(docs)}; lower it")
        test_docs, docs = docs[:k], docs[k:]
    k = _take_documents(docs, n_pool * block_len)
    pool_docs, train_docs = docs[:k], docs[k:]
    if not train_docs:
        raise InputError(f"data.n_pool: {n_pool} pool blocks leave no training document; lower it")
    if tokenizer in ("word", "bpe"):
        tok = train_tokenizer(train_docs, tokenizer, vocab_size, min_count)
    else:
        tok = load_tokenizer(tokenizer)
    train, test, pool = (encode_blocks(tok, d, block_len) for d in (train_docs, test_docs,
                                                                     pool_docs))
    for part, have, want in (("n_train", train, n_train), ("n_test", test, n_test),
                             ("n_pool", pool, n_pool)):
        if want is not None and len(have) < want:
            raise InputError(f"data.{part}: {want} blocks of {block_len} tokens asked, the text "
                             f"gives {len(have)}; lower {part} or block_len")
    train = train if n_train is None else train[:n_train]
    test = test if n_test is None else test[:n_test]
    if len(train) < 2 or len(test) < 1:
        raise InputError(f"data: the text gives {len(train)} training and {len(test)} held-out "
                         f"blocks of {block_len} tokens; need 2 and 1 (lower block_len)")
    params = {
        "tokenizer": tok.to_str(),
        "tokenizer_kind": tokenizer if tokenizer in ("word", "bpe") else "pretrained",
        "vocab_size": int(tok.get_vocab_size()),
        "block_len": block_len,
        "eos_id": _eos_id(tok),
        "documents": {"train": len(train_docs), "test": len(test_docs), "pool": len(pool_docs)},
        "source": source,
    }
    return Dataset(name=name, train=train, test=test, pool=pool[:n_pool] if n_pool else None,
                   kind="text", params=params)


def load_gensim_corpus(
    corpus: str,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    n_pool: int = 0,
    seed: int = 0,
    tokenizer: str = "word",
    vocab_size: int = DEFAULT_VOCAB,
    block_len: int = DEFAULT_BLOCK_LEN,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    min_count: int = 1,
) -> Dataset:
    """One of gensim's packaged corpora (``lee``, ``wiki500``) as blocks of tokens."""
    return documents_dataset(corpus, gensim_documents(corpus), None, n_train=n_train,
                             n_test=n_test, n_pool=n_pool, seed=seed, tokenizer=tokenizer,
                             vocab_size=vocab_size, block_len=block_len,
                             test_fraction=test_fraction, min_count=min_count,
                             source=f"gensim test data: {', '.join(GENSIM_CORPORA[corpus])}")


def load_lee(*, n_train=None, n_test=None, n_pool=0, seed=0, tokenizer: str = "word",
             vocab_size: int = DEFAULT_VOCAB, block_len: int = DEFAULT_BLOCK_LEN,
             test_fraction: float = DEFAULT_TEST_FRACTION, min_count: int = 1) -> Dataset:
    """The Lee news corpus from gensim's test data (see the module docstring)."""
    return load_gensim_corpus("lee", n_train=n_train, n_test=n_test, n_pool=n_pool, seed=seed,
                              tokenizer=tokenizer, vocab_size=vocab_size, block_len=block_len,
                              test_fraction=test_fraction, min_count=min_count)


def load_wiki500(*, n_train=None, n_test=None, n_pool=0, seed=0, tokenizer: str = "word",
                 vocab_size: int = DEFAULT_VOCAB, block_len: int = DEFAULT_BLOCK_LEN,
                 test_fraction: float = DEFAULT_TEST_FRACTION, min_count: int = 1) -> Dataset:
    """250 stemmed English Wikipedia articles from gensim's test data."""
    return load_gensim_corpus("wiki500", n_train=n_train, n_test=n_test, n_pool=n_pool,
                              seed=seed, tokenizer=tokenizer, vocab_size=vocab_size,
                              block_len=block_len, test_fraction=test_fraction,
                              min_count=min_count)


def load_text(*, path: str | None = None, n_train=None, n_test=None, n_pool=0, seed=0,
              tokenizer: str = "bpe", vocab_size: int = DEFAULT_VOCAB,
              block_len: int = DEFAULT_BLOCK_LEN, test_fraction: float = DEFAULT_TEST_FRACTION,
              min_count: int = 1) -> Dataset:
    """Your own text at ``path`` (a .txt file, a folder, wikitext-2 raw) as blocks of tokens."""
    if path is None:
        raise InputError("data.path: dataset 'text' reads your text; set data.path to a .txt "
                         "file or a folder (wikitext-2 raw: the folder with wiki.train.raw)")
    documents, test = read_documents(path)
    return documents_dataset("text", documents, test, n_train=n_train, n_test=n_test,
                             n_pool=n_pool, seed=seed, tokenizer=tokenizer,
                             vocab_size=vocab_size, block_len=block_len,
                             test_fraction=test_fraction, min_count=min_count, source=str(path))


def zipf_probabilities(vocab_size: int, exponent: float) -> np.ndarray:
    """p(i) ∝ (i + 1)^-exponent, i = 0 .. vocab_size - 1."""
    p = np.arange(1, int(vocab_size) + 1, dtype=np.float64) ** -float(exponent)
    return p / p.sum()


def zipf_tokens(n: int, rng: np.random.Generator, vocab_size: int = 1000, exponent: float = 1.1,
                block_len: int = DEFAULT_BLOCK_LEN) -> np.ndarray:
    """``n`` blocks of ``block_len`` i.i.d. tokens from the Zipf law on ``vocab_size`` types."""
    check_int(vocab_size, "vocab_size", 2)
    check_int(block_len, "block_len", 2)
    check_number(exponent, "exponent", positive=True)
    p = zipf_probabilities(vocab_size, exponent)
    return rng.choice(int(vocab_size), size=(int(n), int(block_len)), p=p).astype(np.int64)


def zipf_truth(*, vocab_size: int = 1000, exponent: float = 1.1,
               block_len: int = DEFAULT_BLOCK_LEN) -> dict[str, Any]:
    """The Zipf law's probabilities, beside the options."""
    return {"probabilities": zipf_probabilities(vocab_size, exponent)}


def decode(tokenizer_json: str, ids: np.ndarray) -> list[str]:
    """Rows of token ids back to text with a dataset's tokenizer (``params["tokenizer"]``)."""
    tk = _tokenizers()
    tok = tk.Tokenizer.from_str(tokenizer_json)
    return tok.decode_batch([[int(i) for i in row] for row in np.asarray(ids)],
                            skip_special_tokens=False)
