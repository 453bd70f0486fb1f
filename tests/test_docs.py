"""The documentation site builds with warnings as errors, and its reference pages list every
registered model, dataset, policy and metric (they are written from the registries at build
time, so a registration cannot be missing from them)."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import registry_pages  # noqa: E402

from autophagy.data import DATASETS  # noqa: E402
from autophagy.metrics import METRICS  # noqa: E402
from autophagy.models import MODELS  # noqa: E402
from autophagy.policies import POLICIES, Policy, parameter  # noqa: E402

REGISTRIES = {"models": MODELS, "datasets": DATASETS, "policies": POLICIES, "metrics": METRICS}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built once by sphinx-build with -W (any warning fails the build)."""
    out = tmp_path_factory.mktemp("html")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(DOCS), str(out)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert proc.returncode == 0, f"sphinx-build -W failed:\n{proc.stderr[-4000:]}"
    return out


def _h2_texts(page: Path) -> set[str]:
    """The text of every second-level heading of a built page."""
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", page.read_text(encoding="utf-8"), re.S)
    return {html.unescape(re.sub(r"<[^>]+>", "", h)).replace("¶", "").replace("#", "").strip()
            for h in headings}


@pytest.mark.parametrize("page", sorted(REGISTRIES))
def test_reference_page_has_a_section_for_every_registered_name(site, page):
    built = site / "reference" / "generated" / f"{page}.html"
    missing = sorted(set(REGISTRIES[page]) - _h2_texts(built))
    assert not missing, f"{page}.html has no section for {missing}"


def test_reference_pages_show_each_entrys_options_and_defaults(site):
    models = (site / "reference" / "generated" / "models.html").read_text(encoding="utf-8")
    assert "n_components" in models and "Shared options" in models
    policies = (site / "reference" / "generated" / "policies.html").read_text(encoding="utf-8")
    assert "real_weight" in policies and "synthetic-to-real ratio" in policies
    datasets = (site / "reference" / "generated" / "datasets.html").read_text(encoding="utf-8")
    assert "radial_std" in datasets


def test_every_page_is_built_and_the_figures_are_shipped(site):
    for page in ["index", "getting-started", "stability", "extending", "architecture",
                 "benchmarks", "guide/cli", "guide/configs", "guide/presets",
                 "guide/run-directory", "guide/python-api", "loops/mixed", "reference/api"]:
        assert (site / f"{page}.html").is_file(), page
    for src in re.findall(r'<img[^>]+src="([^"]+)"', (site / "index.html").read_text("utf-8")):
        assert (site / src).is_file(), src


def test_a_new_registration_appears_on_its_reference_page(tmp_path):
    """The pages come from the registries: register a policy and it is listed, unregistered
    it is gone, with no page edited."""
    from dataclasses import dataclass
    from typing import ClassVar

    @dataclass(frozen=True)
    class KeepNone(Policy):
        """Synthetic samples only, scaled by a factor."""

        factor: float = parameter(2.0, help="how many synthetic samples per real one")
        name: ClassVar[str] = "keep_none_docs_test"

    POLICIES.register("keep_none_docs_test", KeepNone)
    try:
        registry_pages.write_pages(tmp_path)
        text = (tmp_path / "reference" / "generated" / "policies.md").read_text("utf-8")
        assert "## `keep_none_docs_test`" in text
        assert "how many synthetic samples per real one" in text and "`2.0`" in text
    finally:
        POLICIES.unregister("keep_none_docs_test")
    registry_pages.write_pages(tmp_path)
    assert "keep_none_docs_test" not in (
        tmp_path / "reference" / "generated" / "policies.md").read_text("utf-8")


def test_markdown_special_characters_in_descriptions_are_escaped():
    assert registry_pages.text("||mean||_2 a*b <x> | y") == (
        "\\|\\|mean\\|\\|\\_2 a\\*b \\<x\\> \\| y")


def test_readme_is_short_and_ci_runs_its_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode("utf-8")) < 10_000
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1).splitlines()
    install, test = first_block[1].split(" && ")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert install in ci and test in ci
