"""NNI 2.x's one-shot DARTS example (NNI's examples/nas/oneshot/darts/end-to-end_example.py),
the same API calls in the same order on a small cell space of our own (NNI's imports
its CNN from a model.py). Lines that differ from NNI's are marked ``# archsmith:``:
the imports and the data (scikit-learn's digits instead of downloading CIFAR-10)."""

import json
from collections import OrderedDict

import archsmith.compat.nni.retiarii.nn.pytorch as nn  # archsmith: import nni.retiarii.nn.pytorch as nn
import torch
from _digits import digits  # archsmith: data without torchvision
from archsmith.compat.nni.retiarii import fixed_arch, model_wrapper  # archsmith: from nni.retiarii
from archsmith.compat.nni.retiarii.evaluator.pytorch.lightning import (  # archsmith: from nni.retiarii...lightning
    Classification,
    DataLoader,
)
from archsmith.compat.nni.retiarii.experiment.pytorch import (  # archsmith: from nni.retiarii.experiment.pytorch
    RetiariiExeConfig,
    RetiariiExperiment,
)
from archsmith.compat.nni.retiarii.strategy import DARTS  # archsmith: from nni.retiarii.strategy
from torch.utils.data.sampler import RandomSampler

torch.manual_seed(0)
dataset_train = digits(train=True)  # archsmith: CIFAR10(root="./data", train=True, download=True, ...)
train_random_sampler = RandomSampler(dataset_train, True, len(dataset_train))
train_loader = DataLoader(dataset_train, 16, sampler=train_random_sampler)

dataset_valid = digits(train=False)  # archsmith: CIFAR10(root="./data", train=False, download=True, ...)
valid_random_sampler = RandomSampler(dataset_valid, True, len(dataset_valid))
valid_loader = DataLoader(dataset_valid, 16, sampler=valid_random_sampler)


def ops(channels):
    return OrderedDict(
        [
            ("conv_3x3", nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))),
            ("max_pool_3x3", nn.MaxPool2d(3, stride=1, padding=1)),
            ("skip_connect", nn.Identity()),
        ]
    )


@model_wrapper
class CNN(nn.Module):
    def __init__(self, channels, n_classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
        self.node1 = nn.LayerChoice(ops(channels), label="node1_op")
        self.node2_input = nn.InputChoice(n_candidates=2, n_chosen=1, label="node2_input")
        self.node2 = nn.LayerChoice(ops(channels), label="node2_op")
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, x):
        s0 = self.stem(x)
        s1 = self.node1(s0)
        s2 = self.node2(self.node2_input([s0, s1]))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(s2, 1), 1))


model = CNN(channels=8, n_classes=10)

cls = Classification(train_dataloader=train_loader, val_dataloaders=valid_loader, max_epochs=1)
strategy_ = DARTS()
experiment = RetiariiExperiment(model, cls, strategy=strategy_)

config = RetiariiExeConfig()
config.execution_engine = "oneshot"

experiment.run(config)

final_architecture = experiment.export_top_models(formatter="dict")[0]
print("Final architecture:", final_architecture)

with open("checkpoint.json", "w") as f:
    json.dump(final_architecture, f)

with fixed_arch("checkpoint.json"):
    model = CNN(channels=8, n_classes=10)

cls = Classification(train_dataloader=train_loader, val_dataloaders=valid_loader, max_epochs=1)
print("Retrained:", cls.fit(model))
