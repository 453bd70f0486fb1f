"""Benchmark: what the downstream metrics add to one generation of a preset.

Usage: ``python benchmarks/downstream_metrics.py [--preset digits-bias-ddpm] [--repeats 3]
[--set model.initial_budget=1280]``

One cell of the preset (its first seed, fully synthetic) is fitted at generation 0, then for
each repeat: one generation (sample the synthetic training set, refit the model: what the loop
does between two evaluations) is timed, and then the preset's downstream metrics on that
generation (a fresh evaluation context: the labelling of the samples, the two classifiers
trained on the samples and on the training set, the group metrics). The annotator of image
datasets is trained once per dataset and cached on disk; its one-time cost is printed apart
(it is zero once the cache holds it). Times are wall-clock medians; on a shared machine expect
noise of tens of percent. The ratio is what the downstream metrics add to a generation; the
target is under a third. The metrics are the preset's downstream ones, or, for a preset that
asks for none (``digits-ddpm``), every downstream metric that applies to its dataset. ``--set``
overrides a field as ``autophagy run --set`` does (a short generation 0 is enough for timing).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="digits-bias-ddpm")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()

    from autophagy.config import load_config
    from autophagy.loop import CellRun, EvalSettings, split_labelled
    from autophagy.metrics import EvalContext, evaluate, resolve_metrics
    from autophagy.policies import parse_policy
    from autophagy.run.cells import build_config_model, build_dataset, loop_settings

    config = load_config(preset=args.preset, overrides=args.overrides)
    seed = config.seed[0]
    dataset = build_dataset(config, seed)
    ev = EvalSettings.from_config(config.eval)
    names = [m.name for m in resolve_metrics(ev.metrics) if "labels" in m.needs]
    if not names:
        from autophagy.data.labelled import has_groups
        from autophagy.metrics.downstream import DOWNSTREAM_METRICS

        names = [m.name for m in DOWNSTREAM_METRICS
                 if "groups" not in m.needs or has_groups(dataset)]
    run = CellRun(build_config_model(config), dataset, parse_policy("fully_synthetic"),
                  loop_settings(config, seed), ev)
    run.fit(*run.training_set())
    run.generation = 1

    def context() -> EvalContext:
        samples, train = run.model.sample(ev.n_samples, rng=np.random.default_rng(1)), run.train
        labels = {}
        if run.conditional:  # the label plane off, as the loop's evaluation takes it
            samples, labels["sample_labels"] = split_labelled(samples, dataset, run.model)
            train, labels["train_labels"] = split_labelled(train, dataset, run.model)
        samples = np.asarray(samples).reshape((len(samples), *dataset.shape))
        return EvalContext(run.model, samples, dataset.test, dataset, np.random.default_rng(2),
                           train=train, downstream=ev.downstream, **labels)

    start = time.perf_counter()
    evaluate(names, context())  # trains (or reads) the annotator once
    first = time.perf_counter() - start
    gens, downs = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run.fit(*run.training_set())
        gens.append(time.perf_counter() - start)
        ctx = context()
        start = time.perf_counter()
        evaluate(names, ctx)
        downs.append(time.perf_counter() - start)
    gen, down = statistics.median(gens), statistics.median(downs)
    print(f"preset {args.preset}: {dataset.name}, {config.model.name}, n_train "
          f"{len(dataset.train)}, eval samples {ev.n_samples}, classifier "
          f"{ev.downstream.get('classifier')}, labels {ev.downstream.get('labels')}")
    print(f"{'':34s}{'seconds':>10s}{'ratio':>8s}")
    print(f"{'one generation (sample + refit)':34s}{gen:10.3f}{1.0:8.2f}")
    print(f"{'downstream metrics (' + str(len(names)) + ')':34s}{down:10.3f}{down / gen:8.2f}")
    print(f"{'first call (annotator, once)':34s}{first:10.3f}{first / gen:8.2f}")


if __name__ == "__main__":
    main()
