"""What a translation run on a real corpus relies on (configs/translation_real.yaml): decoding
constraints, the label-smoothed loss on real steps only, token batches, shared embeddings on a
joint vocabulary through a checkpoint, the metrics against sacrebleu, checkpoint averaging and a
per-step learning-rate schedule driven by the real CLI."""

from __future__ import annotations

import glob
import os

import pytest
import sacrebleu
import torch
import torch.nn.functional as F

from conftest import CONFIGS, logger_args, run_seqkit
from seqkit import LengthBucketSampler, LSTMStack, SequenceModel, TokenEmbedding, WarmupDecay, beam_search, greedy_search
from seqkit.safeload import read_checkpoint
from seqkit.seq2seq.search import length_normaliser
from seqkit_translate import ParallelTextData, Seq2SeqHead
from seqkit_translate.corpus import generate_pairs
from test_decoding import BOS, EOS, _setup

TINY = ["--model.encoder.init_args.embedding_dim=16", "--model.rnn.init_args.hidden_size=8",
        "--model.head.init_args.embedding_dim=16", "--model.head.init_args.hidden_size=16",
        "--model.head.init_args.num_layers=1", "--model.rnn.init_args.num_layers=1"]


def _repeats(seq: list[int], n: int) -> bool:
    grams = [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]
    return len(grams) != len(set(grams))


def _outputs(hyp) -> list[list[int]]:
    return [hyp.tokens[b, : int(hyp.lengths[b])].tolist() for b in range(hyp.tokens.shape[0])]


# -- decoding constraints -------------------------------------------------------------------------
@torch.no_grad()
def test_block_ngram_repeat_and_min_length_hold_in_both_searches():
    dec, state = _setup(B=8, seed=2)
    free = [greedy_search(dec.step, state, 8, BOS, EOS, 14), beam_search(dec.step, state, 8, 4, BOS, EOS, 14)]
    # the toy decoder does repeat bigrams when nothing stops it (so the check below can fail)
    assert any(_repeats([t for t in seq if t != EOS], 2) for hyp in free for seq in _outputs(hyp))
    for hyp in (greedy_search(dec.step, state, 8, BOS, EOS, 14, block_ngram_repeat=2),
                beam_search(dec.step, state, 8, 4, BOS, EOS, 14, block_ngram_repeat=2)):
        for seq in _outputs(hyp):
            assert not _repeats([t for t in seq if t != EOS], 2), seq

    dec, state = _setup(B=8, seed=4, eos_bias=4.0)  # ends at once unless told not to
    early = greedy_search(dec.step, state, 8, BOS, EOS, 10)
    assert (early.lengths < 4).any()
    for hyp in (greedy_search(dec.step, state, 8, BOS, EOS, 10, min_length=4),
                beam_search(dec.step, state, 8, 3, BOS, EOS, 10, length_penalty_kind="wu", min_length=4)):
        for seq in _outputs(hyp):
            assert EOS not in seq[:4] and len(seq) >= 5, seq  # 4 tokens, then <eos>


def test_length_penalties_are_the_documented_formulas():
    assert length_normaliser(7, 0.6, "avg") == pytest.approx(7 ** 0.6)
    assert length_normaliser(7, 0.6, "wu") == pytest.approx(((5 + 7) / 6) ** 0.6)
    assert length_normaliser(7, 0.0, "wu") == 1.0
    with pytest.raises(ValueError, match="choose avg or wu"):
        length_normaliser(3, 1.0, "gnmt")


# -- the loss --------------------------------------------------------------------------------------
def _model(dm, **head_args):
    torch.manual_seed(0)
    return SequenceModel(
        lambda spec, size: Seq2SeqHead(spec, size, embedding_dim=16, hidden_size=16, dropout=0.0, **head_args),
        lambda size: LSTMStack(size, 8, bidirectional=True),
        lambda spec: TokenEmbedding(spec, 16),
        dm.spec,
    )


def test_label_smoothed_loss_counts_real_target_tokens_only():
    dm = ParallelTextData(num_pairs=120, loader={"batch_size": 16}, seed=1)
    dm.setup("fit")
    eps = 0.1
    model = _model(dm, label_smoothing=eps, normalization="tokens").eval()
    head = model.head
    batch = next(iter(dm.train_dataloader()))
    assert batch.target_lengths.min() < batch.target_lengths.max()  # some targets are padded
    with torch.no_grad():
        loss = head.loss(model.encode(batch), batch, "val", model.encode)
        # by hand: every sentence on its own, from the full per-step logits
        state = head.start(model.encode(batch))
        bos = torch.full((batch.size, 1), head.vocab.bos_id)
        logits, _ = head.decoder.teacher_forced(state, torch.cat([bos, batch.targets[:, :-1]], 1))
        total, count = 0.0, 0
        for b in range(batch.size):
            n = int(batch.target_lengths[b])
            logp = torch.log_softmax(logits[b, :n], -1)
            nll = -logp.gather(1, batch.targets[b, :n, None]).squeeze(1)
            total += float(((1 - eps) * nll - eps * logp.mean(-1)).sum())
            count += n
    assert float(loss) == pytest.approx(total / count, rel=1e-5)
    sents = _model(dm, label_smoothing=eps, normalization="sents").eval()
    sents.load_state_dict(model.state_dict())
    with torch.no_grad():
        per_sentence = sents.head.loss(sents.encode(batch), batch, "val", sents.encode)
    assert float(per_sentence) == pytest.approx(total / batch.size, rel=1e-5)


# -- token batches -----------------------------------------------------------------------------------
def test_token_batches_stay_within_the_budget():
    lengths = [1 + (7 * i) % 40 for i in range(500)]
    sampler = LengthBucketSampler(lengths, batch_size=64, shuffle=True, seed=0, max_tokens=120)
    batches = list(iter(sampler))
    assert sorted(i for b in batches for i in b) == list(range(500))  # every example once
    for b in batches:
        assert len(b) * max(lengths[i] for i in b) <= 120 or len(b) == 1
    sizes = {len(b) for b in batches}
    assert max(sizes) >= 4 * min(sizes)  # short examples come many to a batch, long ones few


# -- metrics -----------------------------------------------------------------------------------------
def test_bleu_chrf_and_chrf_plus_plus_match_sacrebleu():
    dm = ParallelTextData(num_pairs=80)
    head = Seq2SeqHead(dm.spec, 16, embedding_dim=8, hidden_size=8)
    # every n-gram order has matches (where none has, sacrebleu smooths and torchmetrics says 0)
    hyps = ["Das ist ein kleiner Test für die Datei .", "Die Datei wurde nicht gefunden", "Kann %s nicht öffnen: %s",
            "ungültige Option -- %c"]
    refs = ["Das ist ein Test für die Datei .", "Datei wurde nicht gefunden", "%s kann nicht geöffnet werden: %s",
            "Ungültige Option -- %c"]
    metrics = head.metrics("test")
    for name in ("bleu", "chrf", "chrf++"):
        metrics[name].update(hyps, [[r] for r in refs])
    assert float(metrics["bleu"].compute()) * 100 == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=0.01)
    assert float(metrics["chrf"].compute()) * 100 == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score, abs=0.01)
    chrfpp = sacrebleu.metrics.CHRF(word_order=2).corpus_score(hyps, [refs]).score
    assert float(metrics["chrf++"].compute()) * 100 == pytest.approx(chrfpp, abs=0.01)


# -- the CLI: joint vocabulary with shared embeddings, averaging, a per-step schedule ---------------
@pytest.fixture(scope="module")
def joint_run(tmp_path_factory):
    """A few steps of configs/translation_real.yaml on demo pairs: unigram subwords on a joint
    vocabulary, shared embeddings, a checkpoint every 2 steps and a WarmupDecay schedule."""
    tmp = tmp_path_factory.mktemp("joint")
    for split, n, seed in (("train", 300, 1), ("val", 40, 2), ("test", 20, 3)):
        (tmp / f"{split}.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in generate_pairs(n, seed=seed)),
                                          encoding="utf-8")
    (tmp / "sources.txt").write_text("Three red cars\n\nOn Monday\n", encoding="utf-8")
    layer = tmp / "every2.yaml"  # the config's ModelCheckpoint, every 2 steps, all kept
    layer.write_text("trainer:\n  callbacks:\n    - class_path: ModelCheckpoint\n      init_args:\n"
                     "        every_n_train_steps: 2\n        save_top_k: -1\n", encoding="utf-8")
    run_seqkit("fit", "--config", str(CONFIGS / "translation_real.yaml"), "--config", str(layer), *TINY,
               *logger_args(tmp),
               f"--data.init_args.train_file={tmp / 'train.tsv'}", f"--data.init_args.val_file={tmp / 'val.tsv'}",
               f"--data.init_args.test_file={tmp / 'test.tsv'}", "--data.init_args.bpe_vocab_size=120",
               "--data.init_args.loader.batch_size=32", "--model.head.init_args.val_bleu_sentences=8",
               "--trainer.max_steps=6", "--trainer.val_check_interval=3",
               "--lr_scheduler=WarmupDecay", "--lr_scheduler.warmup_steps=4", "--lr_scheduler.decay=rsqrt",
               cwd=tmp, timeout=300)
    return tmp


def _checkpoints(tmp) -> list[str]:
    found = [f for f in glob.glob(str(tmp / "run" / "version_0" / "checkpoints" / "*.ckpt"))
             if not f.endswith("last.ckpt")]
    return sorted(found, key=lambda f: read_checkpoint(f, "test")["global_step"])


def test_shared_embeddings_on_a_joint_vocabulary_survive_the_checkpoint(joint_run):
    last = joint_run / "run" / "version_0" / "checkpoints" / "last.ckpt"
    ckpt = read_checkpoint(str(last), "test")
    weights = ckpt["state_dict"]
    # one matrix for the source and target embeddings (the output layer is its own: tie_embeddings false)
    shared = weights["encoder.embedding.weight"]
    assert torch.equal(weights["head.decoder.embedding.weight"], shared)
    assert weights["head.decoder.out.weight"].shape == shared.shape
    out = joint_run / "hyps.txt"
    run_seqkit("predict", "--ckpt_path", str(last), f"--data.init_args.predict_file={joint_run / 'sources.txt'}",
               f"--prediction.output={out}", cwd=joint_run, timeout=240)
    lines = out.read_text(encoding="utf-8").split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""  # one line per source, blank for blank


def test_the_schedule_steps_every_optimizer_step(joint_run):
    files = _checkpoints(joint_run)
    assert [read_checkpoint(f, "test")["global_step"] for f in files] == [2, 4, 6]
    sched = read_checkpoint(files[-1], "test")["lr_schedulers"][0]
    assert sched["last_epoch"] == 6  # stepped after each of the 6 optimizer steps, not once an epoch
    assert sched["_last_lr"][0] == pytest.approx(0.002 * (4 / 7) ** 0.5)  # step 7 will use rsqrt past a 4-step warm-up


def test_average_of_checkpoints_is_their_mean_and_predicts(joint_run, tmp_path):
    files = _checkpoints(joint_run)[-2:]
    out = tmp_path / "avg.ckpt"
    run_seqkit("average", *files, "--output", str(out), cwd=tmp_path)
    avg = read_checkpoint(str(out), "test")
    a, b = (read_checkpoint(f, "test")["state_dict"] for f in files)
    key = "head.decoder.embedding.weight"
    assert not torch.equal(a[key], b[key])
    assert torch.allclose(avg["state_dict"][key], (a[key] + b[key]) / 2, atol=1e-6)
    assert "optimizer_states" not in avg and avg["global_step"] == 6
    # --last K over the run's folder picks the same two files
    folder = tmp_path / "last2.ckpt"
    run_seqkit("average", os.path.dirname(files[0]), "--last", "2", "--output", str(folder), cwd=tmp_path)
    assert torch.equal(read_checkpoint(str(folder), "test")["state_dict"][key], avg["state_dict"][key])
    same = tmp_path / "same.ckpt"  # averaging copies of one checkpoint is the identity
    run_seqkit("average", files[1], files[1], "--output", str(same), cwd=tmp_path)
    assert all(torch.equal(v, b[k]) for k, v in read_checkpoint(str(same), "test")["state_dict"].items())
    hyps = tmp_path / "hyps.txt"
    run_seqkit("predict", "--ckpt_path", str(out), f"--data.init_args.predict_file={joint_run / 'sources.txt'}",
               f"--prediction.output={hyps}", cwd=tmp_path, timeout=240)
    assert len(hyps.read_text(encoding="utf-8").split("\n")) == 4


def test_warmup_decay_factors():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = WarmupDecay(opt, warmup_steps=4, decay="linear", total_steps=8, min_ratio=0.5)
    lrs = []
    for _ in range(9):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:3] == pytest.approx([0.5, 0.75, 1.0])  # warm-up (steps 2, 3, 4 of 4)
    assert lrs[-1] == pytest.approx(0.5) and lrs[4] == pytest.approx(0.75)
