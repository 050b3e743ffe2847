"""NNI 3.0's "Hello, NAS!" tutorial (NNI's examples/tutorials/hello_nas.py), the same
API calls in the same order. Lines that differ from NNI's are marked ``# archsmith:``:
the imports, the data (scikit-learn's digits, no download) and the search direction
(NNI maximized without being told; archsmith asks)."""

import archsmith.compat.nni.nas.strategy as strategy  # archsmith: import nni.nas.strategy
import torch
import torch.nn as nn
import torch.nn.functional as F
from _digits import digits  # archsmith: data without torchvision
from archsmith.compat.nni.nas.evaluator import FunctionalEvaluator  # archsmith: from nni.nas.evaluator
from archsmith.compat.nni.nas.experiment import NasExperiment  # archsmith: from nni.nas.experiment
from archsmith.compat.nni.nas.nn.pytorch import (  # archsmith: from nni.nas.nn.pytorch
    LayerChoice,
    ModelSpace,
    MutableDropout,
    MutableLinear,
)
from torch.utils.data import DataLoader

import archsmith.compat.nni as nni  # archsmith: import nni


class DepthwiseSeparableConv(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.depthwise = nn.Conv2d(in_ch, in_ch, kernel_size=3, groups=in_ch)
        self.pointwise = nn.Conv2d(in_ch, out_ch, kernel_size=1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class MyModelSpace(ModelSpace):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = LayerChoice([nn.Conv2d(32, 64, 3, 1), DepthwiseSeparableConv(32, 64)], label="conv2")
        self.dropout1 = MutableDropout(nni.choice("dropout", [0.25, 0.5, 0.75]))
        self.dropout2 = nn.Dropout(0.5)
        feature = nni.choice("feature", [64, 128, 256])
        self.fc1 = MutableLinear(9216, feature)
        self.fc2 = MutableLinear(feature, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(self.conv2(x), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.fc2(self.dropout2(F.relu(self.fc1(x))))
        return F.log_softmax(x, dim=1)


model_space = MyModelSpace()

search_strategy = strategy.Random()


def train_epoch(model, device, train_loader, optimizer, epoch):
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for data, target in train_loader:
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(data), target)
        loss.backward()
        optimizer.step()


def test_epoch(model, device, test_loader):
    model.eval()
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            correct += (model(data).argmax(dim=1) == target).sum().item()
    return 100.0 * correct / len(test_loader.dataset)


def evaluate_model(model):
    # NNI 3.0 hands over the model itself.
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    model.to(device)

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_loader = DataLoader(digits(train=True), batch_size=64, shuffle=True)  # archsmith: MNIST(...) data
    test_loader = DataLoader(digits(train=False), batch_size=64)  # archsmith: MNIST(..., train=False) data

    for epoch in range(3):
        train_epoch(model, device, train_loader, optimizer, epoch)
        accuracy = test_epoch(model, device, test_loader)
        nni.report_intermediate_result(accuracy)

    nni.report_final_result(accuracy)


evaluator = FunctionalEvaluator(evaluate_model)

exp = NasExperiment(model_space, evaluator, search_strategy)

exp.config.max_trial_number = 3
exp.config.trial_concurrency = 1
exp.config.trial_gpu_number = 0
exp.config.direction = "maximize"  # archsmith: NNI maximized without being told

exp.run(port=8081)

for model_dict in exp.export_top_models(formatter="dict"):
    print(model_dict)
