"""The work of the bias benchmarks (llmviz.estimate.pairs_work, stereoset_work, seat_work) counts exactly the
model calls and token-forwards the scorers make: a forward hook on a tiny model counts them."""

from __future__ import annotations

from contextlib import contextmanager

from llmviz import estimate as E
from llmviz.bias import pairs as PAIRS
from llmviz.bias import seat as SEAT
from llmviz.bias import stereoset as SS
from llmviz.bias.pairs_data import starter_pairs


@contextmanager
def counted(loaded):
    """Shapes ``(rows, width)`` of every call of the model, in order."""
    seen = []

    def hook(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        seen.append(tuple(ids.shape))

    handle = loaded.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


def _same(work: E.Work, seen: list) -> None:
    assert work.calls == len(seen) > 1
    assert work.tokens == sum(b * w for b, w in seen)


def test_pairs_work_counts_the_calls_masked_and_causal(tiny_mlm, tiny_llama, one_thread):
    frame = starter_pairs().frame.head(40)  # two chunks of pairs
    for loaded, batch in ((tiny_mlm, 16), (tiny_llama, 8)):
        with counted(loaded) as seen:
            PAIRS.score_pairs(loaded, frame, batch_size=batch)
        _same(E.pairs_work(PAIRS.call_shapes(loaded, frame, batch)), seen)


def test_stereoset_work_counts_the_calls_masked_and_causal(tiny_mlm, tiny_llama, one_thread):
    data = SS.illustrative_set()  # 42 sentences, both splits
    for loaded, batch in ((tiny_mlm, 16), (tiny_llama, 8)):
        with counted(loaded) as seen:
            SS.score_dataset(loaded, data, batch_size=batch)
        _same(E.stereoset_work(SS.call_shapes(loaded, data, batch)), seen)


def test_seat_work_counts_the_calls(tiny_mlm, one_thread):
    words = [f"word{i}" for i in range(40)]
    sets = {
        "targ1": ("X", words[:30]),
        "targ2": ("Y", words[10:]),
        "attr1": ("A", words[:20]),
        "attr2": ("B", words[5:]),
    }
    tests = [SEAT.SeatTest("one", sets), SEAT.SeatTest("two", dict(sets, attr2=("B", ["home", "family", "x"])))]
    with counted(tiny_mlm) as seen:
        for x in tests:
            SEAT.run_test_full(tiny_mlm, x, n_samples=50)
    _same(E.seat_work(SEAT.call_shapes(tiny_mlm, tests)), seen)
