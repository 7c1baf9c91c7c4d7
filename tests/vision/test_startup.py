"""What the CNN costs before it trains: PyTorch imported only for a search with time for
it, and an optimiser that does not import torch._dynamo (seconds, once per process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from loopml.vision.network import SmallResNet  # noqa: E402


def test_the_optimiser_steps_as_torchs_adamw_does() -> None:
    # loopml's AdamW spares the first fit the seconds torch.optim takes to import
    # torch._dynamo; its updates are torch's, bit for bit.
    from loopml.vision.network import AdamW

    torch.manual_seed(0)
    ours, theirs = SmallResNet(1, 4, 10, dropout=0.0), SmallResNet(1, 4, 10, dropout=0.0)
    theirs.load_state_dict(ours.state_dict())
    mine = AdamW(ours.parameters(), lr=0.004, weight_decay=5e-4)
    reference = torch.optim.AdamW(theirs.parameters(), lr=0.004, weight_decay=5e-4)
    x, y = torch.randn(32, 1, 16, 16), torch.randint(0, 10, (32,))
    for step in range(10):
        mine.lr = 0.004 * (step + 1) / 10  # a schedule, as the CNN's one-cycle sets it
        for group in reference.param_groups:
            group["lr"] = mine.lr
        for net, optimiser in ((ours, mine), (theirs, reference)):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            optimiser.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)


def test_asking_whether_the_cnn_is_available_imports_no_torch() -> None:
    """Importing PyTorch takes seconds: a search with no time for the CNN skips it."""
    script = (
        "import sys\n"
        "from loopml.automl.learners import get_learner\n"
        "cnn = get_learner('cnn')\n"
        "print(cnn.available(), 'torch' in sys.modules, cnn.setup_seconds() > 0)\n"
        "cnn.prepare()\n"
        "print('torch' in sys.modules, cnn.setup_seconds())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert out.split() == ["None", "False", "True", "True", "0.0"], out
