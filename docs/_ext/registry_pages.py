"""Reference pages written from the registries themselves, so they cannot drift from the code.

At ``builder-inited`` this extension asks each registry (models, datasets, policies, metrics) for
its entries and writes one Markdown page per registry into ``reference/generated/`` (ignored by
git). Everything on those pages comes from what the code declares: the registered descriptions,
the keyword arguments of each model's constructor and each dataset's builder, each policy's
declared parameters, each metric's title, direction and needs. A new registration appears on the
next build with nothing to edit here.

Only package-level names are imported (``autophagy.models.MODELS`` and so on), which stay put
while modules move inside the packages.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

GENERATED = Path("reference") / "generated"
_SPECIAL = set("\\`*_[]<>|~#{}$^!&")


def text(value: str) -> str:
    """Plain text made safe for Markdown: every character Markdown would read is escaped."""
    return "".join("\\" + c if c in _SPECIAL else c for c in " ".join(str(value).split()))


def code(value: Any) -> str:
    """``value`` as an inline code span (backticks inside handled by a longer fence)."""
    s = value if isinstance(value, str) else repr(value)
    fence = "``" if "`" in s else "`"
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def default(value: Any) -> str:
    """A default value as written in a config (``None`` is YAML's ``null``)."""
    if value is inspect.Parameter.empty:
        return "(required)"
    if value is None:
        return code("null")
    if isinstance(value, bool):
        return code("true" if value else "false")
    if isinstance(value, tuple):
        value = list(value)
    return code(value)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out + [""]


def target(obj: Any) -> str:
    """``module:qualname`` of a class or function, as a config could name it."""
    return f"{obj.__module__}:{obj.__qualname__}"


def own_options(fn: Any) -> list[inspect.Parameter]:
    """Named keyword parameters of ``fn`` (a function or an ``__init__``), without ``self``."""
    return [
        p for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    ]


def init_chain(cls: type) -> list[type]:
    """The classes along ``cls``'s MRO whose ``__init__`` options a config reaches: each
    constructor that passes ``**options`` up hands the rest to the next one."""
    chain = []
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        chain.append(klass)
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return chain


def page(title: str, intro: str, body: list[str]) -> str:
    note = (
        "```{note}\nThis page is generated from the registry at build time (`docs/_ext/"
        "registry_pages.py`); edit the code's descriptions, not this page.\n```\n"
    )
    return "\n".join([f"# {title}", "", intro, "", note, *body]) + "\n"


def models_page() -> str:
    from autophagy.models import MODEL_DEFAULTS, MODELS

    classes = {name: MODELS[name] for name in MODELS}
    # A base class reached by more than one family holds shared options: listed once, below.
    counts: dict[type, int] = {}
    for cls in classes.values():
        for klass in init_chain(cls)[1:]:
            counts[klass] = counts.get(klass, 0) + 1
    shared = [k for k, c in counts.items() if c > 1]
    rows = [[f"[{code(n)}](#model-{n})", text(MODELS.entry(n).description)] for n in MODELS]
    body = table(["`model.name`", "what"], rows)
    for name, cls in classes.items():
        body += [f"(model-{name})=", f"## `{name}`", "", text(MODELS.entry(name).description), ""]
        body += [f"Class: {code(target(cls))}.", ""]
        fixed = MODEL_DEFAULTS.get(name, {})
        if fixed:
            body += ["This name fixes: " + ", ".join(
                f"{code(k)} = {default(v)}" for k, v in fixed.items()) + ".", ""]
        chain = init_chain(cls)
        params = own_options(vars(chain[0])["__init__"]) if chain else []
        if params:
            body += ["Options (`model.options`):", ""]
            body += table(
                ["option", "default"],
                [[code(p.name), default(fixed.get(p.name, p.default))] for p in params],
            )
        else:
            body += ["No options.", ""]
        bases = [k for k in chain[1:] if k in shared]
        if bases:
            links = ", ".join(f"[{code(k.__name__)}](#options-{k.__name__.lower()})"
                              for k in bases)
            body += [f"Plus the shared options of {links}.", ""]
    for klass in shared:
        users = [n for n, c in classes.items() if klass in init_chain(c)]
        body += [f"(options-{klass.__name__.lower()})=",
                 f"## Shared options: `{klass.__name__}`", "",
                 f"Class {code(target(klass))}, for " + ", ".join(code(u) for u in users)
                 + ". A family's own default, listed above, wins over these.", ""]
        body += table(["option", "default"],
                      [[code(p.name), default(p.default)]
                       for p in own_options(vars(klass)["__init__"])])
    return page(
        "Models",
        "Every model family a config's `model.name` can name, with its options "
        "(`model.options`) and their defaults, read from the constructors' signatures.",
        body,
    )


def datasets_page() -> str:
    from autophagy.data import DATASETS

    rows = [[f"[{code(n)}](#dataset-{n})", text(DATASETS.entry(n).description)]
            for n in DATASETS]
    body = table(["`data.name`", "what"], rows)
    for name in DATASETS:
        entry = DATASETS[name]
        builder = entry.sampler or entry.loader
        how = "generated by" if entry.sampler is not None else "loaded by"
        body += [f"(dataset-{name})=", f"## `{name}`", "", text(entry.description), ""]
        facts = [f"Kind: {entry.kind}; {how} {code(target(builder))}."]
        if entry.loader is not None and "path" in inspect.signature(entry.loader).parameters:
            facts.append("Reads `data.path`.")
        if entry.truth is not None:
            facts.append("Knows its true distribution (metrics and theory compare with it).")
        body += [" ".join(facts), ""]
        options = entry.options()
        if options:
            body += ["Options (`data.options`):", ""]
            body += table(["option", "default"],
                          [[code(k), default(v)] for k, v in options.items()])
        else:
            body += ["No options.", ""]
    return page(
        "Datasets",
        "Every dataset a config's `data.name` can name, with its options (`data.options`) and "
        "their defaults, read from the keyword arguments of its sampler or loader.",
        body,
    )


def policies_page() -> str:
    from autophagy.policies import POLICIES

    rows = [[f"[{code(n)}](#policy-{n})", text(POLICIES.entry(n).description)]
            for n in POLICIES]
    body = table(["`loop.policies` key", "what"], rows)
    for name in POLICIES:
        cls = POLICIES[name]
        body += [f"(policy-{name})=", f"## `{name}`", "", text(POLICIES.entry(name).description),
                 "", f"Class: {code(target(cls))}."]
        if getattr(cls, "needs_pool", False):
            body.append("Draws fresh real samples from the dataset's held-back pool "
                        "(`data.n_pool`).")
        body.append("")
        params = cls.parameters()
        if params:
            body += ["Parameters (a list of values sweeps a parameter marked *sweeps*):", ""]
            body += table(
                ["parameter", "default", "sweeps", "cell-id tag", "meaning"],
                [[code(p.key), default(p.default), "yes" if p.sweep else "no", code(p.tag),
                  text(p.help)] for p in params],
            )
        else:
            body += ["No parameters.", ""]
    return page(
        "Policies",
        "Every loop policy a config's `loop.policies` can name: how it builds each generation's "
        "training set, and its parameters as the policy declares them.",
        body,
    )


def metrics_page() -> str:
    from autophagy.metrics import DEFAULT_METRICS, METRICS

    def direction(m: Any) -> str:
        return "lower" if m.lower_is_better else "higher"

    rows = []
    for name in METRICS:
        m = METRICS[name]
        rows.append([f"[{code(name)}](#metric-{name})", text(m.title), direction(m),
                     "yes" if name in DEFAULT_METRICS else "no"])
    body = table(["`eval.metrics` name", "title", "better", "default"], rows)
    for name in METRICS:
        m = METRICS[name]
        body += [f"(metric-{name})=", f"## `{name}`", "", text(m.description), ""]
        facts = [f"Title in figures: {text(m.title)}.",
                 f"{direction(m).capitalize()} is better."]
        facts.append("Computed by default when it applies." if name in DEFAULT_METRICS
                     else "Computed when `eval.metrics` names it (or a policy adds it).")
        if m.needs:
            facts.append("Needs: " + ", ".join(code(n) for n in sorted(m.needs)) + ".")
        if m.group is not None:
            facts.append(f"Computed in one pass with the other metrics of group "
                         f"{code(m.group.name)}.")
        body += [" ".join(facts), ""]
    return page(
        "Metrics",
        "Every metric a config's `eval.metrics` can name. Each is computed every generation "
        "against the held-out split with its own random stream; `eval.metrics: null` computes "
        "every default metric that applies to the model and data (on token blocks, the text "
        "metrics and the function-space distances).",
        body,
    )


PAGES = {
    "models": models_page,
    "datasets": datasets_page,
    "policies": policies_page,
    "metrics": metrics_page,
}


def write_pages(srcdir: Path) -> list[Path]:
    """Write every reference page under ``srcdir``; a page whose text is unchanged is left
    alone, so an incremental build does not re-read it."""
    out_dir = Path(srcdir) / GENERATED
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in PAGES.items():
        path = out_dir / f"{name}.md"
        content = build()
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def _on_builder_inited(app: Any) -> None:
    write_pages(Path(app.srcdir))


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
