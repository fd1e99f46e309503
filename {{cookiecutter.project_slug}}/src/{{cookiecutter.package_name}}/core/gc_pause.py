"""Python's cyclic garbage collector kept out of a command's start-up and shutdown.

A command imports torch, transformers, datasets and MLflow before it does any work: millions of
objects, none of them garbage, that the collector traverses again and again while they load
(0.8 s of the 15 s `make train` of a text project on 2 cores) and once more while the interpreter
shuts down (0.7 s). `pause()` stops the collector for the start-up; `resume()` moves every live
object into the permanent generation (`gc.freeze`) and starts it again, so training and a
long-running server are collected as usual without rescanning the libraries. At exit the same
freeze skips the final traversal. Reference counting, which frees almost everything, never stops.
"""

from __future__ import annotations

import atexit
import gc

_paused = False


def pause() -> None:
    """Stop the collector until `resume()`; freeze everything at interpreter exit."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True
        atexit.unregister(gc.freeze)  # registered once, however often a process pauses
        atexit.register(gc.freeze)


def resume(freeze: bool = True) -> None:
    """Start-up is over: freeze what the imports built (unless `freeze` is False), collect again.

    Does nothing unless `pause()` stopped the collector, so a caller that manages it keeps control.
    """
    global _paused
    if _paused:
        if freeze:
            gc.freeze()
        gc.enable()
        _paused = False
