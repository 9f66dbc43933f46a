import torch

from lowrank.train.loop import TrainConfig, train
from lowrank.train.lorita_fcn import build_model


def toy_data(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = (x.flatten(1)[:, :10].argmax(1)).long()
    return (x, y), (x[:128], y[:128])


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_training_is_deterministic_given_the_seed():
    train_xy, val_xy = toy_data()
    cfg = TrainConfig(epochs=2, batch_size=64, lr=1e-3, weight_decay=1e-4, seed=3)
    a, ha = train(lambda: build_model(4, 32, 2), cfg, train_xy, val_xy, log=lambda s: None)
    b, hb = train(lambda: build_model(4, 32, 2), cfg, train_xy, val_xy, log=lambda s: None)
    assert torch.equal(weights(a), weights(b))
    assert [h["train_loss"] for h in ha] == [h["train_loss"] for h in hb]
    c, _ = train(
        lambda: build_model(4, 32, 2),
        TrainConfig(2, 64, 1e-3, 1e-4, seed=4),
        train_xy,
        val_xy,
        log=lambda s: None,
    )
    assert not torch.equal(weights(a), weights(c))


def test_resuming_from_a_checkpoint_equals_an_uninterrupted_run(tmp_path):
    train_xy, val_xy = toy_data()
    full_cfg = TrainConfig(epochs=3, batch_size=64, lr=1e-3, weight_decay=1e-4, seed=5)
    full, history = train(
        lambda: build_model(4, 32, 3), full_cfg, train_xy, val_xy, log=lambda s: None
    )
    ckpt = tmp_path / "checkpoint.pt"
    # "killed" after epoch 1: only its checkpoint survives
    train(
        lambda: build_model(4, 32, 3),
        TrainConfig(1, 64, 1e-3, 1e-4, seed=5),
        train_xy,
        val_xy,
        checkpoint=ckpt,
        log=lambda s: None,
    )
    messages = []
    resumed, resumed_history = train(
        lambda: build_model(4, 32, 3),
        full_cfg,
        train_xy,
        val_xy,
        checkpoint=ckpt,
        log=messages.append,
    )
    assert any("resumed" in m for m in messages)
    assert torch.equal(weights(full), weights(resumed))
    assert [h["val_acc"] for h in history] == [h["val_acc"] for h in resumed_history]
