"""What a person sees while a `sluiceway` command runs: progress, then one summary.

On a terminal the progress is one line redrawn in place: the time since the start and the
latest step, whose message carries its own counts and rates (`chunks 3/8 done after 10 s
(~1,200,000 lines/s)`); log lines and the summary erase it and print where it was.
Anywhere else (CI logs, files) each step is a plain `... message` line, as a log reader
expects. No dependency: a carriage return and one ANSI erase-line sequence.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from typing import TextIO

from sluiceway.logs import CLEAR_LINE

TICK_SECONDS = 1.0


class Progress:
    """Progress of one command on `stream` (stderr): in place on a terminal, else lines."""

    def __init__(
        self,
        stream: TextIO,
        *,
        in_place: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.in_place = in_place
        self.clock = clock
        self.started = clock()
        self.message = ""
        self.drawn = False
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.ticker: threading.Thread | None = None

    def __call__(self, message: str) -> None:
        """A step: `starting Spark ...`, `chunks 3/8 done after 10 s (~... lines/s)`."""
        if not self.in_place:
            print(f"... {message}", file=self.stream, flush=True)
            return
        with self.lock:
            self.message = message
            self._draw()
        if self.ticker is None:
            # The clock keeps moving while Spark starts or a long stage runs.
            self.ticker = threading.Thread(target=self._tick, daemon=True)
            self.ticker.start()

    def clear(self) -> None:
        """Erase the line so a summary prints in its place; the next tick draws it again."""
        with self.lock:
            if self.drawn:
                self.stream.write(CLEAR_LINE)
                self.stream.flush()
                self.drawn = False

    def finish(self) -> None:
        """Stop redrawing and erase the line: the command prints its summary next."""
        self.stopped.set()
        if self.ticker is not None:
            self.ticker.join()
        self.clear()

    def line(self) -> str:
        """The progress line as drawn now, cut to the terminal's width (a wrapped line could
        not be redrawn in place)."""
        elapsed = int(self.clock() - self.started)
        text = f"[{elapsed // 60}:{elapsed % 60:02d}] {self.message}"
        width = shutil.get_terminal_size().columns
        return text if len(text) < width else text[: width - 2] + "…"

    def _draw(self) -> None:
        self.stream.write(CLEAR_LINE + self.line())
        self.stream.flush()
        self.drawn = True

    def _tick(self) -> None:
        while not self.stopped.wait(TICK_SECONDS):
            with self.lock:
                self._draw()
