import dataclasses
import logging
import threading
import warnings
from collections import namedtuple
from enum import IntEnum
from typing import NamedTuple

import numpy as np

try:
    import torch
except ImportError:  # the test skips the torch part where it is not installed
    torch = None

Window = namedtuple("Window", "size threshold")
Stats = NamedTuple("Stats", [("mean", float)])
logging.getLogger("policy").warning("ordinary libraries at import")
warnings.warn("a warning at import", stacklevel=2)


class Action(IntEnum):
    NONE = 0
    SPOT = 1
    ON_DEMAND = 2


@dataclasses.dataclass
class Memory:
    seen: list = dataclasses.field(default_factory=list)


class Policy:
    def __init__(self, scenario):
        self.window = Window(12, 0.5)
        self.memory = Memory()
        box = []
        worker = threading.Thread(target=lambda: box.append(np.arange(4).sum()))
        worker.start()
        worker.join()
        self.offset = int(box[0]) - 6
        if torch is not None:
            self.offset += int(torch.tensor([1.0, 2.0]).sum().item()) - 3

    def decide(self, state):
        history = np.frombuffer(bytes(state.spot_history[-self.window.size:]), dtype=np.uint8)
        if state.tick == 1:
            logging.getLogger("policy").warning("tick %d", state.tick)
            warnings.warn("a warning while deciding", stacklevel=2)
        share = Stats(float(history.mean()))
        if state.spot_available and share.mean >= self.window.threshold:
            return Action.SPOT
        return Action.ON_DEMAND + self.offset
