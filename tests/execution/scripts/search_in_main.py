"""A user's search script with everything defined in ``__main__`` and no
``if __name__ == "__main__":`` guard. Run as ``python search_in_main.py WORKDIR LOG``.

Its data set appends the pid of every process that unpickles it to LOG, so the
test can count how often the payload reached a worker. One trial kills its
worker (as an OOM kill would): the run must go on, with a fresh worker.
"""

import os
import signal
import sys

import torch
import torch.nn.functional as F

import archsmith.nn as nn
from archsmith import strategy
from archsmith.evaluator import FunctionalEvaluator, current_sample, report_intermediate_result
from archsmith.experiment import Experiment, ExperimentConfig

workdir, unpickle_log = sys.argv[1], sys.argv[2]


class CountingData:
    """A small data set that logs each unpickling, with the pid of the process."""

    def __init__(self, log):
        self.log = log
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(512, 8, generator=generator)
        self.y = (self.x.sum(1) > 0).long()
        self.padding = bytes(1_000_000)  # a payload worth not sending per trial

    def __setstate__(self, state):
        self.__dict__.update(state)
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")


class TinyNet(nn.ModelSpace):
    def __init__(self):
        super().__init__()
        hidden = nn.choice("hidden", [4, 8, 16])
        self.fc = nn.Linear(8, hidden)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x):
        return self.head(torch.relu(self.fc(x)))


def train(model, data, lr):
    if current_sample() == {"hidden": 4, "lr": 0.5}:
        os.kill(os.getpid(), signal.SIGKILL)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(3):
        loss = F.cross_entropy(model(data.x), data.y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        report_intermediate_result({"acc": 0.0, "loss": float(loss)})
    accuracy = (model(data.x).argmax(1) == data.y).float().mean().item()
    return {"acc": accuracy, "pid": os.getpid()}


evaluator = FunctionalEvaluator(train, data=CountingData(unpickle_log), lr=nn.choice("lr", [0.05, 0.1, 0.5]))
experiment = Experiment(
    TinyNet(),
    evaluator,
    strategy.Random(dedup=True),
    ExperimentConfig(concurrency=2, engine="process", objective="acc", direction="maximize", seed=0, workdir=workdir),
)
experiment.run()  # no max_trials: the run ends when the 9 architectures are exhausted
print("best:", experiment.export_top_models(1))
