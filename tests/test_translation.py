"""The translation plugin: bad input, vocabulary handling, the decoder, search quality on a
trained model, the contract checks, and predict from a checkpoint alone (the training data
deleted)."""

from __future__ import annotations

import logging
import re
from functools import partial

import pytest
import torch

from conftest import CONFIGS, logger_args, run_seqkit
from seqkit import DataError, LSTMStack, SeqkitError, SequenceModel, TokenEmbedding, beam_search
from seqkit.testing import check_datamodule, check_head
from seqkit_translate import ParallelTextData, Seq2SeqHead, TranslationBatch, TranslationSpec
from seqkit_translate.corpus import generate_pairs, portuguese_number

CONFIG = str(CONFIGS / "translation.yaml")
TINY = ["--model.encoder.init_args.embedding_dim=16", "--model.rnn.init_args.hidden_size=16",
        "--model.head.init_args.embedding_dim=16", "--model.head.init_args.hidden_size=32",
        "--model.head.init_args.dropout=0.0", "--model.encoder.init_args.dropout=0.0",
        "--model.head.init_args.beam_size=3"]


def _write_tsv(path, pairs):
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return str(path)


# -- bad input ---------------------------------------------------------------------------------
def test_line_without_tab_names_file_and_line(tmp_path):
    path = _write_tsv(tmp_path / "train.tsv", [("one car", "um carro"), ("two cars", "dois carros")])
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("three cars   três carros\n")
    dm = ParallelTextData(train_file=path)
    with pytest.raises(DataError, match=r"train\.tsv:3: expected 'source<TAB>target'.*on_bad: skip"):
        dm.spec  # noqa: B018


def test_a_missing_training_file_is_named_when_read_not_when_built(tmp_path):
    dm = ParallelTextData(train_file=str(tmp_path / "gone.tsv"))  # building reads nothing
    with pytest.raises(DataError, match=r"data.init_args.train_file: file not found: .*gone\.tsv"):
        dm.spec  # noqa: B018


def test_undecodable_bytes_name_file_and_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes("one car\tum carro\n".encode() + b"two cars\tdois carr\xff\xfeos\n")
    with pytest.raises(DataError, match=r"train\.tsv:2: not valid UTF-8"):
        ParallelTextData(train_file=str(path)).spec  # noqa: B018


def test_empty_file_and_unequal_aligned_files(tmp_path):
    empty = tmp_path / "empty.tsv"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match=r"empty\.tsv: no sentence pairs"):
        ParallelTextData(train_file=str(empty)).spec  # noqa: B018
    (tmp_path / "a.src").write_text("one\ntwo\n")
    (tmp_path / "a.tgt").write_text("um\n")
    with pytest.raises(DataError, match=r"a\.src has 2 lines but .*a\.tgt has 1"):
        ParallelTextData(train_file=[str(tmp_path / "a.src"), str(tmp_path / "a.tgt")]).spec  # noqa: B018


def test_skip_policy_counts_bad_lines(tmp_path, caplog):
    pairs = generate_pairs(60, seed=1)
    path = _write_tsv(tmp_path / "train.tsv", pairs)
    with open(path, "ab") as fh:
        fh.write(b"no tab here\n\xff\xfe\tbad\nsource only\t \n")
    dm = ParallelTextData(train_file=path, on_bad="skip", val_fraction=0.1, test_fraction=0.1)
    with caplog.at_level(logging.WARNING, logger="seqkit.translate"):
        splits = dm.raw_splits()
    assert sum(len(v) for v in splits.values()) == 60
    assert "skipped 3 bad line(s)" in caplog.text


def test_the_cli_shows_a_data_error_as_one_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("one car\tum carro\nno tab on this line\n")
    proc = run_seqkit("fit", "--config", CONFIG, f"--data.init_args.train_file={path}", *logger_args(tmp_path),
                      cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert f"seqkit: error: {path}:2: expected 'source<TAB>target'" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- tokens, lengths, vocabularies ---------------------------------------------------------------
def test_long_sentences_are_truncated_with_a_warning(tmp_path, caplog):
    pairs = [("one two three four five six", "um dois três quatro cinco seis")] * 4 + [("one", "um")] * 4
    dm = ParallelTextData(train_file=_write_tsv(tmp_path / "t.tsv", pairs), max_source_length=3, max_target_length=4,
                          val_fraction=0.25, test_fraction=0.25)
    with caplog.at_level(logging.WARNING, logger="seqkit.translate"):
        dm.setup("fit")
    assert "truncated" in caplog.text and "max_source_length=3" in caplog.text
    assert max(len(it["src"]) for it in dm.train_set.items) <= 3
    assert max(len(it["tgt"]) for it in dm.train_set.items) <= 4 + 1  # + <eos>


def test_unknown_predict_tokens_map_to_unk_and_state_restores(tmp_path):
    dm = ParallelTextData(num_pairs=300)
    spec = dm.spec
    predict = tmp_path / "in.txt"
    predict.write_text("Three zebras\n\nOne red car\n", encoding="utf-8")
    fresh = ParallelTextData(train_file="/nonexistent/train.tsv", predict_file=str(predict))
    fresh.load_state_dict(dm.state_dict())  # what the CLI does from a checkpoint
    assert fresh.spec.vocabs["target"].itos == spec.vocabs["target"].itos
    assert isinstance(fresh.spec, TranslationSpec) and fresh.spec.target_tokenizer is not None
    fresh.setup("predict")
    src = fresh.vocabs["source"]
    first, blank, third = (fresh.predict_set[i]["src"].tolist() for i in range(3))
    batch = fresh.collate([fresh.predict_set[i] for i in range(3)])
    assert isinstance(batch, TranslationBatch) and batch.targets is None
    assert batch.names == ["Three zebras", "", "One red car"] and batch.source_tokens[0] == ["Three", "zebras"]
    assert first == [src.stoi["Three"], src.unk_id]
    assert blank == []
    assert src.unk_id not in third


def test_bpe_and_char_tokenizers_round_trip(tmp_path):
    for kind in ("bpe", "char"):
        dm = ParallelTextData(num_pairs=400, source_tokenizer=kind, target_tokenizer=kind, bpe_vocab_size=200)
        dm.setup("fit")
        restored = ParallelTextData(source_tokenizer=kind, target_tokenizer=kind)
        restored.load_state_dict(dm.state_dict())
        tok = restored.tokenizers["target"]
        text = "Vinte e uma casas vermelhas na segunda-feira"
        assert tok.detokenize(tok.tokenize(text)) == text
        assert len(restored.spec.vocabs["target"]) == len(dm.vocabs["target"])


def test_number_words_agree_in_gender():
    assert portuguese_number(21, feminine=True) == "vinte e uma"
    assert portuguese_number(200) == "duzentos" and portuguese_number(201, feminine=True) == "duzentas e uma"
    assert portuguese_number(100) == "cem" and portuguese_number(1105) == "mil cento e cinco"


# -- the decoder ----------------------------------------------------------------------------------
@pytest.mark.parametrize("attention,feeding,tie,bidirectional", [
    ("none", False, False, False), ("dot", False, True, True), ("general", True, False, True),
    ("additive", False, False, False), ("additive", True, True, True),
])
def test_decoder_variants_train_and_decode(attention, feeding, tie, bidirectional):
    torch.manual_seed(0)
    dm = ParallelTextData(num_pairs=80, loader={"batch_size": 8})
    dm.setup("fit")
    model = SequenceModel(
        lambda spec, size: Seq2SeqHead(spec, size, embedding_dim=16, hidden_size=16, attention=attention,
                                       input_feeding=feeding, tie_embeddings=tie, num_layers=2),
        lambda size: LSTMStack(size, 8 if bidirectional else 16, bidirectional=bidirectional),
        lambda spec: TokenEmbedding(spec, 16),
        dm.spec,
    )
    head = model.head
    if tie:
        assert head.decoder.out is None  # logits come from the target embedding matrix
    batch = next(iter(dm.train_dataloader()))
    loss = head.loss(model.encode(batch), batch, "train", model.encode)
    loss.backward()
    assert torch.isfinite(loss) and head.decoder.embedding.weight.grad is not None
    model.eval()
    with torch.no_grad():
        state = head.start(model.encode(batch))
        bos = torch.full((batch.size, 1), head.vocab.bos_id)
        parallel, _ = head.decoder.teacher_forced(state, torch.cat([bos, batch.targets[:, :-1]], 1))
        # the same logits one step at a time, as decoding computes them
        tokens, steps = bos[:, 0], []
        st = state
        for t in range(batch.targets.shape[1]):
            logits, st, weights = head.decoder.step(tokens, st)
            steps.append(logits)
            tokens = batch.targets[:, t]
        assert torch.allclose(parallel, torch.stack(steps, 1), atol=1e-5)
        assert (weights is None) == (attention == "none")
        hyps = head.generate(state, batch.lengths, 3)
        assert hyps.tokens.shape[0] == batch.size and (hyps.lengths >= 1).all()
        assert (hyps.lengths <= head.max_lengths(batch.lengths)).all()


def test_dot_attention_needs_matching_sizes():
    dm = ParallelTextData(num_pairs=50)
    with pytest.raises(SeqkitError, match="'dot' needs the decoder size"):
        Seq2SeqHead(dm.spec, 32, hidden_size=16, attention="dot")


def test_the_head_refuses_data_without_a_translation_spec():
    from seqkit import Spec

    with pytest.raises(SeqkitError, match="Seq2SeqHead needs a TranslationSpec"):
        Seq2SeqHead(Spec(input_size=10), 16)


# -- search on a small trained model ------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model trained to a sensible fit (about 5 s of CPU): short demo sentences, 4 epochs."""
    torch.manual_seed(0)
    short = [p for p in generate_pairs(6000, seed=11) if len(p[0].split()) <= 8][:2000]
    path = _write_tsv(tmp_path_factory.mktemp("short") / "train.tsv", short)
    dm = ParallelTextData(train_file=path, loader={"batch_size": 32, "eval_batch_size": 64}, seed=3)
    dm.setup("fit")
    model = SequenceModel(
        lambda spec, size: Seq2SeqHead(spec, size, embedding_dim=32, hidden_size=64, attention="additive"),
        lambda size: LSTMStack(size, 32, bidirectional=True),
        lambda spec: TokenEmbedding(spec, 32),
        dm.spec,
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(4):
        for batch in dm.train_dataloader():
            loss = model.head.loss(model.encode(batch), batch, "train", model.encode)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
    model.eval()
    return model, dm


@torch.no_grad()
def test_beam_never_scores_below_greedy_and_beam_one_is_greedy(trained):
    model, dm = trained
    head = model.head
    head.length_penalty = 0.0  # rank by raw model log-probability, the quantity compared here
    v, seen, ended, better = head.vocab, 0, 0, 0
    for batch in dm.val_dataloader():
        state = head.start(model.encode(batch))
        limit = head.max_lengths(batch.lengths)
        greedy = head.generate(state, batch.lengths, 1)
        beam = head.generate(state, batch.lengths, 5)
        one = beam_search(head.decoder.search_step, state, batch.size, 1, v.bos_id, v.eos_id, limit, pad_id=v.pad_id)
        assert torch.equal(one.tokens, greedy.tokens) and torch.equal(one.scores, greedy.scores)
        assert (beam.scores >= greedy.scores - 1e-4).all(), (beam.scores - greedy.scores).min()
        seen += batch.size
        ended += int((greedy.lengths < limit).sum())
        better += int((beam.scores > greedy.scores + 1e-4).sum())
    assert seen == len(dm.val_set)
    # the model learnt something: its outputs end with <eos>, not at the length limit
    assert ended > 0.8 * seen
    assert better > 0  # and the search is not trivial: beam finds more probable outputs for some


# -- the contract checks ------------------------------------------------------------------------
def test_data_module_and_head_pass_the_contract_checks(tmp_path):
    train = _write_tsv(tmp_path / "train.tsv", generate_pairs(120, seed=2))
    sources = tmp_path / "sources.txt"
    sources.write_text("Three red cars\n\nOn Monday\n", encoding="utf-8")
    report = check_datamodule(ParallelTextData, training_files=[train], predict_kwargs={"predict_file": str(sources)},
                              train_file=train, val_fraction=0.2, test_fraction=0.1, loader={"batch_size": 8})
    assert "predicts without training files" in report.passed, report
    head = check_head(Seq2SeqHead, ParallelTextData(num_pairs=80, loader={"batch_size": 8}),
                      head_args={"embedding_dim": 16, "hidden_size": 16, "beam_size": 2},
                      encoder=partial(TokenEmbedding, embedding_dim=16))
    for check in ("all parameters used", "honours lengths", "ignores padded targets", "checkpoint round trip"):
        assert check in head.passed, head


# -- predict from the checkpoint alone ----------------------------------------------------------
def _test_overrides(config: str) -> list[str]:
    return re.search(r"^# test-overrides:(.*)$", open(config, encoding="utf-8").read(), flags=re.M).group(1).split()


def test_predict_from_checkpoint_after_the_training_file_is_deleted(tmp_path):
    """One training step through the CLI, then `seqkit predict --ckpt_path` with no --config, before
    and after the training file is deleted: the same translations, and attention pictures from the
    config's AttentionPlot callback."""
    pairs = generate_pairs(150, seed=5)
    train = _write_tsv(tmp_path / "train.tsv", pairs)
    run_seqkit("fit", "--config", CONFIG, *_test_overrides(CONFIG), f"--data.init_args.train_file={train}",
               "--data.init_args.loader.batch_size=16", "--trainer.max_steps=1", "--trainer.limit_train_batches=1",
               "--trainer.limit_val_batches=1", *logger_args(tmp_path / "fit"), cwd=tmp_path)
    ckpt = str(sorted((tmp_path / "fit").rglob("*.ckpt"))[-1])
    sources = tmp_path / "sources.txt"
    sources.write_text("".join(f"{s}\n" for s, _ in pairs[:20]) + "\nThree zebras\n", encoding="utf-8")
    outputs = []
    for run in ("before", "after"):
        if run == "after":
            (tmp_path / "train.tsv").unlink()
        out = tmp_path / f"{run}.txt"
        run_seqkit("predict", "--ckpt_path", ckpt, f"--data.init_args.predict_file={sources}",
                   f"--prediction.output={out}", *logger_args(tmp_path / run), cwd=tmp_path)
        outputs.append(out.read_text(encoding="utf-8").splitlines())
        assert list((tmp_path / run).rglob("attention_predict_0.png"))
    assert len(outputs[0]) == 22 and outputs[0] == outputs[1]
    assert outputs[0][20] == ""  # a blank line translates to a blank line
