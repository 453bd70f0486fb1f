"""A causal transformer language model on blocks of token ids: GPT-2 style from scratch, or any
pretrained causal LM from a local folder.

From scratch, the network is ``transformers``' ``GPT2LMHeadModel`` built from a ``GPT2Config``
(``n_layer``, ``n_head``, ``n_embd``) with one extra token, the beginning-of-block symbol (id
``vocab_size``), that each block is read after. With ``init_checkpoint`` (a folder written by
``save_pretrained``, e.g. OPT-125m as Shumailov et al. 2024 fine-tune it on wikitext-2), the
network is ``AutoModelForCausalLM.from_pretrained`` of it and the blocks are read after its own
``bos_token_id``; the data must then be tokenized by that model's tokenizer
(``data.options.tokenizer: <the same folder>``).

Training is the shared :class:`~autophagy.models.training.trainer.Trainer` (AdamW, warm-up,
gradient clipping, EMA, warm start with the optimizer state, exact checkpoints) on the next-token
cross-entropy; a generation sees ``budget`` tokens (``None``: ``epochs`` passes over its
training set). Generation is ``transformers``' ``generate``: sampling at a temperature with
``top_k`` / ``top_p`` (tail cutting, Holtzman et al. 2020), or beam search (``num_beams`` > 1,
Shumailov et al.'s setting: 5 beams) with a ``repetition_penalty``; unconditioned, or continuing
the first ``prompt_len`` tokens of each real block. All randomness (initial weights, minibatch
order, dropout, sampling) is drawn from the ``rng`` the loop passes, so resume is exact.

Needs the ``[text]`` extra (``transformers``).
"""

from __future__ import annotations

import contextlib
import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autophagy.errors import ArgumentError, InputError
from autophagy.models.families.ngram import NextTokenFunction, check_generation
from autophagy.models.training.trainer import TrainConfig, Trainer, resolve_device, torch_generator
from autophagy.theory.sampling import check_temperature

TEXT_EXTRA = "pip install 'autophagy[text]'"


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ArgumentError("name", f"the gpt family needs transformers; {TEXT_EXTRA}") from None
    transformers.logging.set_verbosity_error()
    return transformers


def check_causal_lm(path: str | Path) -> Any:
    """The ``transformers`` config of a local causal LM folder, or a one-line error."""
    tf = _transformers()
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ArgumentError("init_checkpoint", f"{str(p)!r} is not a folder; give the folder a "
                            "causal LM was saved to (save_pretrained)")
    try:
        config = tf.AutoConfig.from_pretrained(str(p))
    except (OSError, ValueError) as err:
        raise ArgumentError("init_checkpoint", f"{str(p)!r} holds no transformers model "
                            f"({str(err).splitlines()[0][:120]})") from None
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    causal = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(config.model_type, ())
    causal = {causal} if isinstance(causal, str) else set(causal)
    saved = list(getattr(config, "architectures", None) or [])
    if not causal or (saved and not causal & set(saved)):
        what = saved[0] if saved else type(config).__name__
        raise ArgumentError("init_checkpoint", f"{str(p)!r} is a {what}, not a causal "
                            "language model; give a folder saved from an AutoModelForCausalLM "
                            "(GPT-2, OPT, Llama, ...)")
    return config


class GPT(NextTokenFunction):
    """Causal transformer on token blocks (see the module docstring).

    Arguments:
        n_layer, n_head, n_embd, dropout: the GPT-2 network built from scratch.
        vocab_size: token types (``None``: one more than the largest id of the first fit).
        init_checkpoint: a local pretrained causal LM folder (replaces the network above).
        epochs: passes over the training set a generation when ``fit`` gets no budget.
        lr, batch_size, warmup, grad_clip, weight_decay, ema, device, mixed_precision: the
            trainer's (:class:`~autophagy.models.training.trainer.TrainConfig`).
        top_k, top_p, num_beams, repetition_penalty, prompt_len: generation (see above).
        keep_prompt: a block is the real prefix and its continuation (``True``), or only the
            ``block_len`` tokens generated after it (``False``: Shumailov et al. give the whole
            64-token block and keep the next 64, ``prompt_len`` = ``block_len``).
        use_cache: key-value cache while generating (off: recompute every prefix).
        sample_batch_size: blocks generated (and scored) at a time.
    """

    sampling_temperature = "approximate"  # per-token p^(1/tau), as every LM samples
    identifiable = False  # its weights are not; its next-token laws are (NextTokenFunction)

    def __init__(self, *, n_layer: int = 2, n_head: int = 2, n_embd: int = 64,
                 dropout: float = 0.0, vocab_size: int | None = None,
                 init_checkpoint: str | None = None, epochs: float = 1.0, lr: float = 1e-3,
                 batch_size: int = 32, warmup: int = 0, grad_clip: float | None = 1.0,
                 weight_decay: float = 0.0, ema: float = 0.0, device: str = "auto",
                 mixed_precision: bool = False, top_k: int | None = None,
                 top_p: float | None = None, num_beams: int = 1,
                 repetition_penalty: float = 1.0, prompt_len: int = 0,
                 keep_prompt: bool = True, use_cache: bool = True,
                 sample_batch_size: int = 256):
        _transformers()
        for name, value in (("n_layer", n_layer), ("n_head", n_head), ("n_embd", n_embd),
                            ("num_beams", num_beams), ("sample_batch_size", sample_batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number >= 1, got {value!r}")
        if n_embd % n_head:
            raise InputError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        if not (isinstance(epochs, int | float) and epochs > 0):
            raise InputError(f"epochs must be a positive number, got {epochs!r}")
        if not (isinstance(repetition_penalty, int | float) and repetition_penalty > 0):
            raise InputError(f"repetition_penalty must be a positive number, got "
                             f"{repetition_penalty!r}")
        check_generation(top_k, top_p, prompt_len)
        if init_checkpoint is not None:
            self.pretrained_config_ = check_causal_lm(init_checkpoint)
        self.n_layer, self.n_head, self.n_embd, self.dropout = n_layer, n_head, n_embd, dropout
        self.vocab_size, self.init_checkpoint, self.epochs = vocab_size, init_checkpoint, epochs
        self.train_config = TrainConfig(lr=lr, batch_size=batch_size, warmup=warmup,
                                        grad_clip=grad_clip, weight_decay=weight_decay, ema=ema,
                                        device=device, mixed_precision=mixed_precision)
        self.top_k, self.top_p, self.num_beams = top_k, top_p, num_beams
        self.repetition_penalty, self.prompt_len = float(repetition_penalty), prompt_len
        self.keep_prompt = bool(keep_prompt)
        self.use_cache, self.sample_batch_size = use_cache, sample_batch_size

    # ------------------------------------------------------------------ network
    def _build(self) -> torch.nn.Module:
        tf = _transformers()
        if self.init_checkpoint is not None:
            return tf.AutoModelForCausalLM.from_pretrained(str(Path(self.init_checkpoint)
                                                               .expanduser()),
                                                           dtype=torch.float32)
        extra = 0 if self.keep_prompt else self.prompt_len  # the prompt before a whole block
        config = tf.GPT2Config(vocab_size=self.vocab_ + 1,
                               n_positions=self.block_len + 1 + extra,
                               n_embd=self.n_embd, n_layer=self.n_layer, n_head=self.n_head,
                               resid_pdrop=self.dropout, embd_pdrop=self.dropout,
                               attn_pdrop=self.dropout, bos_token_id=self.vocab_,
                               eos_token_id=self.vocab_)
        return tf.GPT2LMHeadModel(config)

    def _setup(self, x: np.ndarray) -> None:
        """Vocabulary, block length, beginning symbol and prompts, at the first fit."""
        self.block_len = int(x.shape[1])
        if self.prompt_len > self.block_len:
            raise InputError(f"prompt_len ({self.prompt_len}) is longer than the blocks "
                             f"({self.block_len} tokens)")
        if self.init_checkpoint is not None:
            config = self.pretrained_config_
            self.vocab_ = int(config.vocab_size)
            bos = config.bos_token_id if config.bos_token_id is not None else config.eos_token_id
            self.bos_ = int(bos if bos is not None else 0)
        else:
            self.vocab_ = int(self.vocab_size or int(x.max()) + 1)
            self.bos_ = self.vocab_
        if int(x.max()) >= self.vocab_:
            raise InputError(f"data holds token id {int(x.max())}, the model has "
                             f"{self.vocab_} types; tokenize with the model's tokenizer or "
                             "raise vocab_size")
        self.prompts_ = x[:, : self.prompt_len].copy()
        self.trainer_ = Trainer(self._build, self.train_config)

    def check_pretrained(self, data: np.ndarray) -> None:
        """Before a run: the data's ids fit the pretrained model's vocabulary."""
        x = np.asarray(data)
        vocab = (self.pretrained_config_.vocab_size if self.init_checkpoint is not None
                 else self.vocab_size)
        if vocab is not None and int(x.max()) >= int(vocab):
            raise InputError(f"model: the data holds token id {int(x.max())}, the model has "
                             f"{vocab} types; tokenize with the model's tokenizer "
                             "(data.options.tokenizer) or raise vocab_size")

    def _with_bos(self, x: torch.Tensor) -> torch.Tensor:
        bos = torch.full((len(x), 1), self.bos_, dtype=torch.long, device=x.device)
        return torch.cat([bos, x.long()], dim=1)

    def _loss(self, module: torch.nn.Module, batch: torch.Tensor, generator) -> torch.Tensor:
        ids = self._with_bos(batch)
        logits = module(input_ids=ids).logits[:, :-1]
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                                 ids[:, 1:].reshape(-1))

    # ------------------------------------------------------------------ protocol
    def fit(self, data, *, warm_start=False, budget=None, rng, progress=None) -> GPT:
        """Train for ``budget`` tokens (``None``: ``epochs`` passes), warm-started or anew."""
        x = np.asarray(data)
        if x.ndim != 2 or x.dtype.kind not in "iu" or len(x) == 0:
            raise InputError(f"data must be a non-empty (n_blocks, block_len) array of token "
                             f"ids, got shape {x.shape} of {x.dtype}")
        if not (warm_start and getattr(self, "trainer_", None) is not None
                and self.trainer_.initialized):
            self._setup(x)
            cold = True
        else:
            cold = False
        if int(x.max()) >= self.vocab_:
            raise InputError(f"data holds token id {int(x.max())} >= vocab_size {self.vocab_}")
        tokens = budget if budget is not None else self.epochs * x.size
        blocks = math.ceil(int(tokens) / x.shape[1])
        generator = torch_generator(rng)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        if cold:
            self.trainer_.reset(generator)
        report = None
        if progress is not None:
            def report(step, total, loss):
                progress(step=step, steps=total)
        with torch.random.fork_rng(devices=self._cuda()):
            torch.manual_seed(seed)  # dropout draws from the global stream: seed it from rng
            self.trainer_.train(torch.as_tensor(x), blocks, generator, self._loss, report)
        return self

    def _cuda(self) -> list:
        device = resolve_device(self.train_config.device)
        return [device] if device.type == "cuda" else []

    @torch.no_grad()
    def sample(self, n, *, rng, temperature=1.0) -> np.ndarray:
        """``n`` blocks (int64, (n, block_len)) from ``generate``; see the module docstring."""
        n = int(n)
        out = np.zeros((n, self.block_len), dtype=np.int64)
        if n == 0:
            return out
        tau = check_temperature(temperature)
        seed = int(rng.integers(2**62))
        module = self.trainer_.eval_module
        module.eval()
        device = next(module.parameters()).device
        prompts = None
        if self.prompt_len:
            prompts = self.prompts_[np.arange(n) % len(self.prompts_)]
        with torch.random.fork_rng(devices=self._cuda()):
            torch.manual_seed(seed)  # the sampler draws from the global stream
            for a in range(0, n, self.sample_batch_size):
                b = min(n, a + self.sample_batch_size)
                start = torch.full((b - a, 1), self.bos_, dtype=torch.long)
                if prompts is not None:
                    start = torch.cat([start, torch.as_tensor(prompts[a:b])], dim=1)
                given = start.shape[1] - 1
                new = self.block_len - given if self.keep_prompt else self.block_len
                with self.trainer_.autocast():
                    ids = module.generate(**self._generate_args(start.to(device), new, tau))
                first = 1 if self.keep_prompt else 1 + given
                out[a:b] = ids[:, first : first + self.block_len].cpu().numpy()
        return out

    def _generate_args(self, start: torch.Tensor, new: int, tau: float) -> dict[str, Any]:
        beams = self.num_beams > 1
        args: dict[str, Any] = {
            "input_ids": start, "attention_mask": torch.ones_like(start),
            "max_new_tokens": new, "min_new_tokens": new, "do_sample": not beams,
            "num_beams": self.num_beams, "use_cache": self.use_cache,
            "repetition_penalty": self.repetition_penalty, "pad_token_id": self.bos_,
            "eos_token_id": None if self.init_checkpoint is None else self.bos_,
        }
        if not beams:
            args.update(temperature=tau, top_k=self.top_k or 0, top_p=self.top_p or 1.0)
        if self.init_checkpoint is None:
            args["suppress_tokens"] = [self.bos_]  # never write the beginning symbol
        return args

    # ------------------------------------------------------------------ scoring
    def _logits(self, module, ids: np.ndarray) -> torch.Tensor:
        device = next(module.parameters()).device
        x = torch.as_tensor(np.minimum(ids, self.vocab_ - 1), dtype=torch.long, device=device)
        trainer = getattr(self, "trainer_", None)
        autocast = trainer.autocast() if trainer is not None else contextlib.nullcontext()
        with torch.no_grad(), autocast:
            return module(input_ids=self._with_bos(x)).logits.float()

    def token_log_probs(self, blocks, reference: dict[str, Any] | None = None) -> np.ndarray:
        """log p(x_t | x_<t) of every token (n, L), under this or a reference state's weights."""
        module = self._reference_module(reference) if reference is not None \
            else self.trainer_.eval_module
        module.eval()
        x = np.asarray(blocks).astype(np.int64)
        out = np.empty(x.shape, dtype=np.float64)
        for a in range(0, len(x), self.sample_batch_size):
            chunk = x[a : a + self.sample_batch_size]
            logits = self._logits(module, chunk)[:, :-1]
            lp = torch.log_softmax(self._tokens_only(logits), dim=-1)
            target = torch.as_tensor(np.minimum(chunk, self.vocab_ - 1), device=lp.device)
            out[a : a + len(chunk)] = lp.gather(-1, target[..., None])[..., 0].cpu().double()
        out[x >= self.vocab_] = -np.inf
        return out

    def _tokens_only(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits over the token types (a scratch model's beginning symbol dropped)."""
        return logits[..., : self.vocab_]

    def next_token_probs(self, contexts) -> np.ndarray:
        """Next-token distributions (R, V) after each row of ``contexts`` (R, C)."""
        module = self.trainer_.eval_module
        module.eval()
        ctx = np.asarray(contexts).astype(np.int64).reshape(len(contexts), -1)
        logits = self._logits(module, ctx)[:, -1]
        return torch.softmax(self._tokens_only(logits), dim=-1).cpu().double().numpy()

    def reference_state(self) -> dict[str, Any]:
        """This generation's weights, to score later generations' samples under."""
        module = self.trainer_.eval_module
        return {"vocab": self.vocab_, "bos": self.bos_, "block_len": self.block_len,
                "module": {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}}

    def _reference_module(self, state: dict[str, Any]) -> torch.nn.Module:
        cached = getattr(self, "_reference", None)
        if cached is not None and cached[0] is state:
            return cached[1]
        if getattr(self, "trainer_", None) is None:  # a fresh model (the report): its setup
            self.vocab_, self.bos_ = int(state["vocab"]), int(state["bos"])
            self.block_len = int(state["block_len"])
            module = self._build()
        else:
            module = copy.deepcopy(self.trainer_.eval_module)
        module.load_state_dict(state["module"])
        module.to(resolve_device(self.train_config.device))
        module.eval()
        self._reference = (state, module)
        return module

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        if getattr(self, "trainer_", None) is None:
            return {"fitted": False}
        return {"fitted": True, "vocab": self.vocab_, "bos": self.bos_,
                "block_len": self.block_len, "prompts": self.prompts_.copy(),
                "trainer": self.trainer_.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state.get("fitted", False):
            self.trainer_ = None
            return
        self.vocab_, self.bos_ = int(state["vocab"]), int(state["bos"])
        self.block_len = int(state["block_len"])
        self.prompts_ = np.asarray(state["prompts"], dtype=np.int64)
        self.trainer_ = Trainer(self._build, self.train_config)
        self.trainer_.load_state_dict(state["trainer"])
