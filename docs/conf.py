"""Sphinx configuration of the autophagy documentation (furo, MyST Markdown, autodoc).

Build: ``sphinx-build -W -b html docs docs/_build/html`` (tests/test_docs.py does the same).
The reference pages for models, datasets, policies and metrics are written from the registries
at build time by ``_ext/registry_pages.py``.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent / "src"))

import autophagy  # noqa: E402

project = "autophagy"
author = "the autophagy authors"
copyright = "2024-2026, the autophagy authors"
release = version = autophagy.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "registry_pages",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

highlight_language = "none"  # unlabelled blocks are tables and trees, not code
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"autophagy {release}"
html_static_path = ["_static"]


# Napoleon reads an attribute's or property's docstring "Legend text: the name ..." as
# "type: description". Ours are prose, so give those back as written.
_ATTRIBUTE_LINES: dict[str, list[str]] = {}


def _keep_attribute_lines(app, what, name, obj, options, lines):
    if what in ("attribute", "property", "data"):
        _ATTRIBUTE_LINES[name] = list(lines)


def _restore_attribute_lines(app, what, name, obj, options, lines):
    if name in _ATTRIBUTE_LINES:
        lines[:] = _ATTRIBUTE_LINES.pop(name)


def setup(app):
    app.connect("autodoc-process-docstring", _keep_attribute_lines, priority=100)
    app.connect("autodoc-process-docstring", _restore_attribute_lines, priority=900)
