"""NNI 2.x's multi-trial MNIST search (NNI's examples/nas/multi-trial/mnist/search.py),
the same API calls in the same order. Lines that differ from NNI's are marked
``# archsmith:``: the imports, the data (scikit-learn's digits, no download) and the
search direction (NNI maximized without being told; archsmith asks)."""

import random

import archsmith.compat.nni.retiarii.nn.pytorch as nn  # archsmith: import nni.retiarii.nn.pytorch as nn
import archsmith.compat.nni.retiarii.strategy as strategy  # archsmith: import nni.retiarii.strategy
import torch
import torch.nn.functional as F
from _digits import digits  # archsmith: data without torchvision
from archsmith.compat.nni.retiarii import model_wrapper  # archsmith: from nni.retiarii
from archsmith.compat.nni.retiarii.evaluator import FunctionalEvaluator  # archsmith: from nni.retiarii.evaluator
from archsmith.compat.nni.retiarii.experiment.pytorch import (  # archsmith: from nni.retiarii.experiment.pytorch
    RetiariiExeConfig,
    RetiariiExperiment,
    debug_mutated_model,  # noqa: F401 - imported, unused, as in NNI's example
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


@model_wrapper
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.LayerChoice([nn.Conv2d(32, 64, 3, 1), DepthwiseSeparableConv(32, 64)])
        self.dropout1 = nn.Dropout(nn.ValueChoice([0.25, 0.5, 0.75]))
        self.dropout2 = nn.Dropout(0.5)
        feature = nn.ValueChoice([64, 128, 256])
        self.fc1 = nn.Linear(9216, feature)
        self.fc2 = nn.Linear(feature, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(self.conv2(x), 2)
        x = torch.flatten(self.dropout1(x), 1)
        return self.fc2(self.dropout2(F.relu(self.fc1(x))))


def train_epoch(model, device, train_loader, optimizer, epoch):
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for data, target in train_loader:
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(data), target)
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.4f}")


def test_epoch(model, device, test_loader):
    model.eval()
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            correct += (model(data).argmax(dim=1) == target).sum().item()
    return 100.0 * correct / len(test_loader.dataset)


def evaluate_model(model_cls):
    # NNI 2.x hands over the class; the function instantiates it.
    model = model_cls()

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_loader = DataLoader(digits(train=True), batch_size=64, shuffle=True)  # archsmith: MNIST(...) data
    test_loader = DataLoader(digits(train=False), batch_size=64)  # archsmith: MNIST(..., train=False) data

    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    model.to(device)

    for epoch in range(3):
        train_epoch(model, device, train_loader, optimizer, epoch)
        accuracy = test_epoch(model, device, test_loader)
        nni.report_intermediate_result(accuracy)

    nni.report_final_result(accuracy)


if __name__ == "__main__":
    base_model = Net()

    search_strategy = strategy.Random()
    model_evaluator = FunctionalEvaluator(evaluate_model)

    exp = RetiariiExperiment(base_model, model_evaluator, [], search_strategy)

    exp_config = RetiariiExeConfig("local")
    exp_config.experiment_name = "mnist_search"
    exp_config.trial_concurrency = 2
    exp_config.max_trial_number = 20
    exp_config.training_service.use_active_gpu = False
    exp_config.direction = "maximize"  # archsmith: NNI maximized without being told
    export_formatter = "dict"

    exp.run(exp_config, 8081 + random.randint(0, 100))
    print("Final model:")
    for model_code in exp.export_top_models(formatter=export_formatter):
        print(model_code)
