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


def _search_block(search_seeds):
    return {
        "lorita_fcn": {
            "seeds": [0, 1, 2],
            "width": 16,
            "epochs": 1,
            "batch_size": 128,
            "lr": 1e-3,
            "weight_decays": [0.0, 0.5],
            "train_subset": 512,
            "search_seeds": search_seeds,
        }
    }


def test_weight_decay_search_on_some_seeds_trains_the_others_at_the_choice(
    tmp_path, real_mnist_dir
):
    from lowrank.train.lorita_fcn import train_config

    block = _search_block([0])
    out = tmp_path / "fcn3_N2"
    quiet = lambda _s: None  # noqa: E731
    # one seed outside the search, alone: it trains the search runs it needs, then itself
    assert train_config(block, 3, 2, str(real_mnist_dir), out, quiet, only_seed=2) is None
    summary = train_config(block, 3, 2, str(real_mnist_dir), out, quiet)
    search = [r for r in summary["runs"] if r["seed"] == 0]
    assert sorted(r["weight_decay"] for r in search) == [0.0, 0.5]
    best = max(search, key=lambda r: r["val_acc"])["weight_decay"]
    assert summary["selected_weight_decay"] == best
    assert summary["search_seeds"] == [0]
    others = [(r["seed"], r["weight_decay"]) for r in summary["runs"] if r["seed"] != 0]
    assert others == [(1, best), (2, best)]
    # the seed-2 run of the first call is the one in the summary (reused, not retrained)
    runs = sorted(p.name for p in (out / "runs").glob("*/*"))
    assert runs == sorted(["wd0_seed0", "wd0.5_seed0", f"wd{best:g}_seed1", f"wd{best:g}_seed2"])


def test_without_search_seeds_every_seed_runs_the_grid(tmp_path, real_mnist_dir):
    from lowrank.train.lorita_fcn import train_config

    summary = train_config(
        _search_block(None), 3, 1, str(real_mnist_dir), tmp_path / "o", lambda _s: None
    )
    assert len(summary["runs"]) == 6
    assert summary["search_seeds"] == [0, 1, 2]
