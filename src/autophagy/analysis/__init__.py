"""Theory beside measurement: overlays, contraction estimates, run constants, agreement checks.

Why a layer of its own: :mod:`autophagy.theory` is pure numpy/scipy closed forms; putting them
next to a run's measurements needs the loop, the store and the policies' declarations. The
report draws what this layer computes and computes nothing itself.
"""
