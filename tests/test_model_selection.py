"""Model selection by default: a fit keeps best.ckpt by the head's main validation metric and
last.ckpt, and `seqkit test|predict --ckpt_path best|last` resolve to the newest run of the
config's name; a config's own ModelCheckpoint is kept."""

from __future__ import annotations

import torch

from conftest import CONFIGS, read_metrics, run_seqkit

TINY = ["--data.init_args.num_train=32", "--data.init_args.num_val=16", "--data.init_args.num_test=8",
        "--data.init_args.min_frames=16", "--data.init_args.max_frames=24", "--data.init_args.window=16",
        "--data.init_args.overlap=4", "--model.encoder.init_args.channels=4", "--model.encoder.init_args.output_size=8",
        "--model.rnn.init_args.hidden_size=8", "--trainer.enable_progress_bar=false", "--trainer.max_epochs=4"]


def _runs(tmp_path) -> list[str]:
    return [f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}"]


def test_best_checkpoint_is_kept_and_resolved(tmp_path):
    video = str(CONFIGS / "video.yaml")
    run_seqkit("fit", "--config", video, *TINY, *_runs(tmp_path), "--trainer.max_epochs=1", cwd=tmp_path)  # an older run
    run_seqkit("fit", "--config", video, *TINY, *_runs(tmp_path), "--optimizer.init_args.lr=0.01", cwd=tmp_path)
    newest = tmp_path / "runs" / "video" / "version_1" / "checkpoints"
    assert sorted(p.name for p in newest.iterdir()) == ["best.ckpt", "last.ckpt"]
    # best.ckpt is the epoch with the highest validation accuracy (the head's monitor)
    rows = read_metrics(tmp_path / "runs" / "video" / "version_1")
    accs = [float(r["val_acc"]) for r in rows if r.get("val_acc")]
    state = torch.load(newest / "last.ckpt", weights_only=True)["callbacks"]
    (key, saved), = ((k, v) for k, v in state.items() if k.startswith("ModelCheckpoint"))
    assert "'monitor': 'val_acc'" in key and "'mode': 'max'" in key
    assert float(saved["best_model_score"]) == max(accs) and saved["best_model_path"].endswith("best.ckpt")
    best = torch.load(newest / "best.ckpt", weights_only=True)
    assert best["epoch"] == accs.index(max(accs))
    # test --ckpt_path best: the newest run's best.ckpt, found from the --config's run name
    proc = run_seqkit("test", "--config", video, *TINY, *_runs(tmp_path), "--ckpt_path", "best", cwd=tmp_path)
    assert f"--ckpt_path best is {newest / 'best.ckpt'}" in proc.stderr
    proc = run_seqkit("predict", "--config", video, *TINY, *_runs(tmp_path), "--ckpt_path=last",
                      f"--prediction.output={tmp_path / 'preds.csv'}", cwd=tmp_path)
    assert f"--ckpt_path last is {newest / 'last.ckpt'}" in proc.stderr and (tmp_path / "preds.csv").is_file()
    # without --config there is no run name to look under: one clear line
    proc = run_seqkit("predict", "--ckpt_path", "best", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "give the task's --config" in proc.stderr


def test_a_configs_own_checkpoint_callback_is_kept(tmp_path):
    layer = tmp_path / "ckpt.yaml"
    layer.write_text("trainer:\n  callbacks:\n    - class_path: ModelCheckpoint\n      init_args:\n"
                     "        filename: mine-{epoch}\n        save_top_k: -1\n")
    run_seqkit("fit", "--config", str(CONFIGS / "video.yaml"), "--config", str(layer), *TINY, "--trainer.max_epochs=2",
               *_runs(tmp_path), cwd=tmp_path)
    folder = tmp_path / "runs" / "video" / "version_0" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt", "mine-epoch=0.ckpt", "mine-epoch=1.ckpt"]
    proc = run_seqkit("test", "--config", str(CONFIGS / "video.yaml"), *TINY, *_runs(tmp_path), "--ckpt_path", "best",
                      cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "has no best.ckpt" in proc.stderr and "--ckpt_path last" in proc.stderr
