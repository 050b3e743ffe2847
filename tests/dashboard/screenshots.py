"""The dashboard's screenshots in docs/img, from a real small search (an MLP space on
scikit-learn's digits, 16 trials of regularized evolution, in this process):

    python -m tests.dashboard.screenshots [--out docs/img] [--keep DIR]

Writes dashboard-experiments.png, dashboard-experiment.png and dashboard-trial.png.
Needs Chromium and chromedriver (apt-get install chromium chromium-driver)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import archsmith
import archsmith.nn as nn
from archsmith import strategy
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig
from archsmith.space import Numerical

from ._pages import draw_figure, open_page
from ._serve import chromium, chromium_missing, serve


class DigitsMLP(nn.ModelSpace):
    """A one-hidden-layer MLP: width, activation, dropout and learning rate searched."""

    def __init__(self) -> None:
        super().__init__()
        hidden = nn.ValueChoice([16, 32, 64, 128], label="hidden")
        self.fc1 = nn.Linear(64, hidden)
        self.act = nn.LayerChoice([nn.ReLU(), nn.Tanh(), nn.Sigmoid()], label="activation")
        self.drop = nn.Dropout(nn.ValueChoice([0.0, 0.2, 0.5], label="dropout"))
        self.fc2 = nn.Linear(hidden, 10)
        self.lr = Numerical(1e-3, 1e-1, log=True, label="lr")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))


def train_digits(model: Any, epochs: int = 4) -> dict[str, float]:
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train, val = slice(0, 1400), slice(1400, None)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(model.lr))
    val_acc = 0.0
    for epoch in range(epochs):
        model.train()
        for batch in torch.randperm(1400).split(100):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[train][batch]), y[train][batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_acc = (model(x[val]).argmax(1) == y[val]).float().mean().item()
        print(f"epoch {epoch}: val_acc {val_acc:.4f}")
        archsmith.report_intermediate_result({"val_acc": val_acc})
    return {"val_acc": val_acc}


def search(workdir: Path) -> Path:
    config = ExperimentConfig(
        engine="inprocess", workdir=workdir, seed=0, max_trials=16, objective="val_acc", direction="maximize"
    )
    evolution = strategy.RegularizedEvolution(population_size=8, sample_size=4)
    Experiment(DigitsMLP(), FunctionalEvaluator(train_digits), evolution, config).run()
    return workdir


def shoot(root: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with serve(root) as url:
        driver = chromium(1280, 800)
        try:
            open_page(driver, url + "/")
            written.append(out / "dashboard-experiments.png")
            driver.set_window_size(1280, 420)
            driver.save_screenshot(str(written[-1]))
            driver.set_window_size(1280, 1500)
            open_page(driver, url + "/experiments/digits")
            # The best first, of the widest models: sorting and a filter at work, and
            # the figures in the picture.
            driver.execute_script(
                "const th = () => document.querySelector('#trials th[data-column=\"obj:val_acc\"]');"
                "th().click(); th().click();"
                "const s = document.querySelector('#filters select[data-decision=\"0\"]');"
                "s.value = '128'; s.dispatchEvent(new Event('change'));"
            )
            for name in ("history", "curves"):
                draw_figure(driver, name)
            driver.execute_script("window.scrollTo(0, 0)")
            time.sleep(0.5)
            written.append(out / "dashboard-experiment.png")
            driver.save_screenshot(str(written[-1]))
            best = driver.execute_script("return state.summary.best.trial")
            driver.set_window_size(1280, 1300)
            open_page(driver, f"{url}/experiments/digits/trials/{best}")
            time.sleep(1.0)
            written.append(out / "dashboard-trial.png")
            driver.save_screenshot(str(written[-1]))
        finally:
            driver.quit()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--keep", type=Path, default=None, help="run the search here and keep it")
    args = parser.parse_args()
    missing = chromium_missing()
    if missing:
        raise SystemExit(f"cannot take screenshots: {missing}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="archsmith-screenshots-"))
    if not (root / "digits").exists():
        search(root / "digits")
    for path in shoot(root, args.out):
        print(f"{path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    # The space is searched under its importable name (not __main__), so that the
    # dashboard can rebuild it and show the trials' module trees.
    from tests.dashboard import screenshots

    screenshots.main()
