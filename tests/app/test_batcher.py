"""`keras_lstm.app.batcher.Batcher` with a fake `run`: batches formed up to `max_batch`,
`max_wait` respected, an exception reaching only its callers, shutdown answering every
request. No model, no HTTP."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from keras_lstm.app.batcher import Batcher


class Recorder:
    """A fake runtime call: upper-cases texts, records each call's key and texts,
    raises for the text "boom", and can be held until released."""

    def __init__(self):
        self.calls = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, key, texts):
        self.calls.append((key, list(texts)))
        self.release.wait(5)
        if "boom" in texts:
            raise ValueError("boom is not a text")
        return [f"{key}:{text.upper()}" for text in texts]


def served(work, run=None, **options):
    """Runs `await work(batcher, run)` with a started batcher, stopping it after."""
    run = run or Recorder()
    options = {"max_batch": 4, "max_wait": 0.5, **options}

    async def main():
        with ThreadPoolExecutor(2) as executor:
            batcher = Batcher(run, executor=executor, **options)
            batcher.start()
            try:
                return await work(batcher, run)
            finally:
                await batcher.stop()

    return asyncio.run(main())


def test_batches_fill_up_to_max_batch_and_answer_each_request_its_own_texts():
    async def work(batcher, run):
        answers = await asyncio.gather(*(batcher.submit("k", [f"t{i}"]) for i in range(10)))
        return answers, [len(texts) for _, texts in run.calls]

    answers, sizes = served(work)
    assert answers == [[f"k:T{i}"] for i in range(10)]
    assert sizes == [4, 4, 2]  # the last holds every request left: it does not wait


def test_requests_of_several_texts_are_not_split_and_keys_do_not_mix():
    async def work(batcher, run):
        answers = await asyncio.gather(batcher.submit("a", ["x", "y", "z"]),
                                       batcher.submit("b", ["p"]),
                                       batcher.submit("a", ["q", "r"]),
                                       batcher.submit("b", ["s"]))
        return answers, run.calls

    answers, calls = served(work)
    assert answers == [["a:X", "a:Y", "a:Z"], ["b:P"], ["a:Q", "a:R"], ["b:S"]]
    # "a" 3 + 2 > max_batch 4: two calls for a; the two b requests share one.
    assert sorted(calls) == [("a", ["q", "r"]), ("a", ["x", "y", "z"]), ("b", ["p", "s"])]


def test_a_lone_request_waits_max_wait_for_company_then_goes_alone():
    async def work(batcher, run):
        started = time.perf_counter()
        answer = await batcher.submit("k", ["a"])
        return answer, time.perf_counter() - started

    # The caller says it holds 3 requests: the batch waits for the other two, up to max_wait.
    answer, seconds = served(work, max_wait=0.2, in_flight=lambda: 3)
    assert answer == ["k:A"]
    assert 0.2 <= seconds < 1.5


def test_a_lone_request_does_not_wait_when_it_is_all_the_caller_holds():
    async def work(batcher, run):
        started = time.perf_counter()
        await batcher.submit("k", ["a"])
        return time.perf_counter() - started

    assert served(work, max_wait=5.0) < 1.0


def test_a_waiting_batch_goes_when_wake_says_the_callers_count_went_down():
    held = [2]  # the caller holds two requests; one will leave without being submitted

    async def work(batcher, run):
        async def leave():
            await asyncio.sleep(0.1)
            held[0] -= 1
            batcher.wake()

        started = time.perf_counter()
        answer, _ = await asyncio.gather(batcher.submit("k", ["a"]), leave())
        return answer, time.perf_counter() - started

    answer, seconds = served(work, max_wait=5.0, in_flight=lambda: held[0])
    assert answer == ["k:A"]
    assert 0.1 <= seconds < 1.5  # not the 5 s max_wait


def test_an_exception_reaches_only_the_requests_that_raise_it():
    async def work(batcher, run):
        return await asyncio.gather(batcher.submit("k", ["a"]), batcher.submit("k", ["boom"]),
                                    batcher.submit("k", ["c", "d"]), return_exceptions=True)

    answers = served(work)
    assert answers[0] == ["k:A"] and answers[2] == ["k:C", "k:D"]
    assert isinstance(answers[1], ValueError) and str(answers[1]) == "boom is not a text"


def test_the_batcher_goes_on_after_an_exception():
    async def work(batcher, run):
        with pytest.raises(ValueError, match="boom"):
            await batcher.submit("k", ["boom"])
        return await batcher.submit("k", ["after"])

    assert served(work) == ["k:AFTER"]


def test_stop_answers_every_request_submitted_then_refuses_new_ones():
    run = Recorder()
    run.release.clear()  # the first batch holds the executor until released

    async def main():
        with ThreadPoolExecutor(1) as executor:
            batcher = Batcher(run, max_batch=2, max_wait=0.01, executor=executor, parallel=1)
            batcher.start()
            submitted = [asyncio.ensure_future(batcher.submit("k", [f"t{i}"])) for i in range(5)]
            await asyncio.sleep(0.05)  # the first batch is running, the others queued
            stopping = asyncio.ensure_future(batcher.stop())
            await asyncio.sleep(0.05)
            assert not stopping.done()  # it waits for the requests it holds
            with pytest.raises(RuntimeError, match="not running"):
                await batcher.submit("k", ["late"])
            run.release.set()
            await asyncio.wait_for(stopping, 5)
            return [future.result() for future in submitted], batcher.task

    answers, task = asyncio.run(main())
    assert answers == [[f"k:T{i}"] for i in range(5)]
    assert task is None


def test_a_cancelled_request_is_not_run_and_does_not_block_stop():
    run = Recorder()
    run.release.clear()

    async def main():
        with ThreadPoolExecutor(1) as executor:
            batcher = Batcher(run, max_batch=1, max_wait=0.01, executor=executor, parallel=1)
            batcher.start()
            first = asyncio.ensure_future(batcher.submit("k", ["first"]))
            second = asyncio.ensure_future(batcher.submit("k", ["gone"]))
            await asyncio.sleep(0.05)
            second.cancel()  # its client went away while the first batch ran
            run.release.set()
            answer = await first
            await asyncio.wait_for(batcher.stop(), 5)
            return answer

    assert asyncio.run(main()) == ["k:FIRST"]
    assert [texts for _, texts in run.calls] == [["first"]]
