"""The loss curve of a fine-tuning run: training loss at each step, validation loss after each epoch.

``Curve`` collects the points from the run's events (any face feeds it the events it gets); ``text()``
draws it with plotext (6.x: the ``plotext.figure`` API) as a string, ANSI-coloured or plain, which a
terminal prints and a TUI can show through ``rich.text.Text.from_ansi``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gptterm.finetune import events as ev


@dataclass
class Curve:
    train: list[tuple[float, float]] = field(default_factory=list)  # (epoch, loss) after each step
    val: list[tuple[float, float]] = field(default_factory=list)  # (epoch, loss); epoch 0: before training

    def add(self, event: ev.Event) -> None:
        if isinstance(event, ev.Step):
            self.train.append((event.epoch - 1 + event.step / event.steps, event.loss))
        elif isinstance(event, ev.Epoch) and event.val_loss is not None:
            self.val.append((float(event.epoch), event.val_loss))

    def __bool__(self) -> bool:
        return bool(self.train or self.val)

    def text(self, width: int = 72, height: int = 18, *, colour: bool = True) -> str:
        import plotext  # heavy: plotext (only the drawn loss curve pays for it)

        fig = plotext.figure
        fig.clear()
        fig.theme("simple")
        for points, label in ((self.train, "train"), (self.val, "validation")):
            if points:
                signal = fig.signal([x for x, _ in points], [y for _, y in points], marker="braille")
                signal.label(label)
                if len(points) > 1:
                    signal.lines()
                fig.draw(signal)
        fig.plot_size(max(width, 30), max(height, 8))
        fig.title("loss (cross-entropy, nats per token)")
        fig.label("epoch", "x")
        return str(fig.build().string(colorless=not colour))
