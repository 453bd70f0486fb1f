"""A real model "killed" (KeyboardInterrupt) during a given fit, for resume tests: the tests that
check a resumed cell equals an uninterrupted one share it (test_loop, downstream, gpt)."""

from __future__ import annotations


def killed_at(family: type) -> type:
    """A subclass of ``family`` whose fit number ``kill_fit`` (1-based) raises KeyboardInterrupt
    before it trains: ``killed_at(GPT)(3, **options)``."""

    class Killed(family):
        def __init__(self, kill_fit: int, **kw):
            super().__init__(**kw)
            self.kill_fit, self.fits = kill_fit, 0

        def fit(self, data, **kw):
            self.fits += 1
            if self.fits == self.kill_fit:
                raise KeyboardInterrupt
            return super().fit(data, **kw)

    Killed.__name__ = f"Killed{family.__name__}"
    return Killed
