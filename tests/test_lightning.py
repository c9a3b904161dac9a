"""The Lightning adapter: a spec's model and train section run one epoch in a plain `lightning.Trainer`."""

from __future__ import annotations

import pytest
from conftest import ROOT

lightning = pytest.importorskip("lightning")

from nncompile.runtime.lightning import from_spec  # noqa: E402 - only where Lightning is installed


@pytest.mark.slow
def test_a_spec_trains_one_epoch_in_a_lightning_trainer():
    module, data = from_spec(ROOT / "specs" / "digits_mlp.yaml")
    trainer = lightning.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.validate(module, data, verbose=False)
    before = float(trainer.callback_metrics["val_accuracy"])
    trainer.fit(module, data)
    metrics = {key: float(value) for key, value in trainer.callback_metrics.items()}
    assert metrics["val_accuracy"] > 0.8 > before + 0.3, metrics
    assert metrics["val_loss"] < 1.0 and "train_loss" in metrics
    assert module.model.fc1.weight.requires_grad  # the spec's own module, trained in place


@pytest.mark.slow
def test_next_token_perplexity_is_logged(tmp_path):
    import numpy as np

    tokens = tmp_path / "tokens.npy"
    np.save(tokens, np.frombuffer(b"abcabcabd " * 400, dtype=np.uint8).astype(np.int64))
    spec = tmp_path / "gpt.yaml"
    text = (ROOT / "specs" / "zoo" / "gpt.yaml").read_text()
    spec.write_text(
        text + f"train:\n  batch_size: 16\n  data: {{dataset: tokens, path: '{tokens}'}}\n  optimizer: {{type: adamw, lr: 3.0e-3}}\n"
    )
    module, data = from_spec(spec, block_size=16, vocab_size=128, n_layer=1, n_head=2, n_embd=32)
    trainer = lightning.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, data)
    assert float(trainer.callback_metrics["val_perplexity"]) < 3.0
