"""Everything that can fail before training, checked once before a run directory exists."""

from __future__ import annotations

from autophagy.config import Config, ConfigError, config_field
from autophagy.errors import InputError
from autophagy.loop import check_conditional
from autophagy.metrics import resolve_metrics
from autophagy.models.base import check_sampling_temperature
from autophagy.run.cells import build_config_model, build_dataset
from autophagy.run.grid import cell_configs, expand_grid


def check_config(config: Config) -> None:
    """Everything that can fail before training, checked before a run directory exists:
    the dataset loads, the model builds, the policies fit the data, the metrics exist. Library
    errors are named here by the config field they come from (the one place that maps them)."""
    cells = expand_grid(config)
    for cfg in cell_configs(config):  # each combination of swept values, checked on its own
        with config_field("data"):
            dataset = build_dataset(cfg, cells[0].seed)
        with config_field("model"):
            model = build_config_model(cfg)
            check_pretrained = getattr(getattr(model, "base", model), "check_pretrained", None)
            if check_pretrained is not None:  # a received checkpoint is read once, here
                check_pretrained(dataset.train)
        with config_field("loop"):
            check_sampling_temperature(model, cfg.loop.temperature)
        with config_field("data.n_pool"):
            for spec in cells:
                spec.policy.check(len(dataset.train), dataset.pool)
        for policy in {spec.policy.cell_tag: spec.policy for spec in cells}.values():
            with config_field(f"loop.policies.{policy.name}"):
                policy.bind(dataset)  # a reward is built and tried on real samples
            try:  # its messages name their field (model, loop.policies.<name>)
                check_conditional(model, dataset, policy)
            except InputError as err:
                raise ConfigError(str(err)) from None
    metrics = resolve_metrics(config.eval.metrics, dataset.kind)
    check_downstream(metrics, dataset, config,
                     conditional=getattr(model, "class_conditional", False))
    if any(m.needs & {"features", "classifier"} for m in metrics):
        from autophagy.metrics.feature_metrics import make_extractor

        with config_field("eval"):
            make_extractor(config.eval.features, dataset, config.eval.inception, check_only=True)
    if config.run.executor == "ray":
        from autophagy.run.ray import check_ray

        check_ray(config)
    if config.run.tracker != "none":
        from autophagy.run.trackers import check_tracker

        check_tracker(config)
    if config.eval.verdict_metric not in (config.eval.metrics or [config.eval.verdict_metric]):
        raise ConfigError(
            f"eval.verdict_metric: {config.eval.verdict_metric!r} is not among eval.metrics"
        )


def check_downstream(metrics, dataset, config: Config, conditional: bool = False) -> None:
    """A metric that needs labels or a group attribute is refused on a dataset without one,
    naming the metric and the datasets that have it; so is a bad ``eval.downstream``."""
    from autophagy.data.labelled import has_groups, has_labels
    from autophagy.data.registry import datasets_providing

    for what, present in (("labels", has_labels(dataset)), ("groups", has_groups(dataset))):
        wanting = [m.name for m in metrics if what in m.needs]
        if wanting and not present:
            noun = "class labels" if what == "labels" else "a group attribute"
            raise ConfigError(
                f"eval.metrics: {wanting[0]!r} needs {noun}, which dataset "
                f"{config.data.name!r} lacks; datasets with {noun}: "
                f"{', '.join(datasets_providing(what))}"
            )
    if any("labels" in m.needs for m in metrics):
        from autophagy.metrics.downstream import classifier_kind
        from autophagy.metrics.labelling import label_source

        with config_field("eval"):
            source = label_source(dataset, config.eval.downstream.labels, conditional)
            classifier_kind(dataset, config.eval.downstream.classifier)
            if dataset.kind != "images" and source == "annotator":
                raise ConfigError("eval.downstream.labels: the annotator labels images; points "
                                  f"of {config.data.name!r} carry their label as a column")
        if any("groups" in m.needs for m in metrics):
            from autophagy.metrics.downstream import require_fairlearn

            with config_field("eval.metrics"):
                require_fairlearn()
