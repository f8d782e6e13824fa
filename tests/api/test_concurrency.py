"""Many threads, one process: correct answers, a thread-safe session and memo, identical queries coalesced.

The emulator caps pages at 100, so every lookup also pages concurrently inside the client's pool.
"""

from __future__ import annotations

import io
import json as jsonlib
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import urllib3
from pydantic import SecretStr

from pulumi_ucloud_images import (
    AmbiguousImageError,
    APIError,
    Client,
    NoImageFoundError,
    RetryPolicy,
    Settings,
    TransportError,
    lookup_images,
)
from pulumi_ucloud_images._api.client import shared_client
from pulumi_ucloud_images._emulator.catalog import DEMO_REGION
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator

pytestmark = pytest.mark.timeout(120)

THREADS = 16
NO_SLEEP = RetryPolicy(attempts=3, sleep=lambda seconds: None)

# (filters, the answer): facts of the bundled catalogue, or the error a strict lookup must give.
QUERIES: list[tuple[dict[str, Any], str]] = [
    ({"name_regex": r"^CentOS 7\.2 "}, "uimage-f1chxn"),
    ({"os_type": "linux", "name_regex": r"^Ubuntu 22\.04", "architecture": "x86_64", "most_recent": True},
     "uimage-ub2205"),
    ({"image_type": "base", "name_regex": r"^Ubuntu 22\.04", "architecture": "aarch64", "most_recent": True},
     "uimage-ub22a6"),
    ({"project_id": "org-platform", "image_type": "custom", "name_regex": "^golden-web-", "most_recent": True},
     "uimage-gw0314"),
    ({"ids": ["uimage-f1chxn", "uimage-ub2205"], "name_regex": "CentOS"}, "uimage-f1chxn"),
    ({"image_id": "uimage-ub2203"}, "uimage-ub2203"),
    ({"name_regex": r"^Ubuntu 22\.04"}, "AmbiguousImageError"),
    ({"name_regex": "^no such image$"}, "NoImageFoundError"),
]


@pytest.fixture
def emulator(start_emulator: Callable[[Emulator], Emulator]) -> Emulator:
    return start_emulator(Emulator(max_limit=100))


def settings_for(emulator: Emulator) -> Settings:
    return Settings(public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY), region=DEMO_REGION,
                    base_url=emulator.base_url, timeout=10)


def reference_listing(emulator: Emulator, params: dict[str, Any]) -> tuple[Any, ...]:
    """The listing read by a separate, sequential client; the emulator's request log is cleared after."""
    with Client(settings_for(emulator), retry=NO_SLEEP, max_workers=1) as reference:
        listing = reference.describe_images(params)
    emulator.reset_requests()
    return listing


def answer(filters: dict[str, Any], **kwargs: Any) -> str:
    try:
        return lookup_images(**filters, **kwargs).image_id
    except (AmbiguousImageError, NoImageFoundError) as refusal:
        return type(refusal).__name__


def run_threads(worker: Callable[[int], Any], count: int) -> list[Any]:
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(worker, range(count)))


def test_200_lookups_from_16_threads_all_get_the_right_answer(emulator: Emulator) -> None:
    settings = settings_for(emulator)
    plan = [QUERIES[index % len(QUERIES)] for index in range(200)]
    random.Random(5).shuffle(plan)
    results = run_threads(lambda index: answer(plan[index][0], settings=settings), len(plan))
    assert results == [expected for _, expected in plan]
    concurrent_requests = emulator.request_count

    # Each distinct listing was read once, whatever the interleaving: the same count as one sequential pass.
    emulator.reset_requests()
    with Client(settings, retry=NO_SLEEP, max_workers=1) as sequential:
        for filters, expected in QUERIES:
            assert answer(filters, client=sequential) == expected
    assert concurrent_requests == emulator.request_count


def test_a_shared_client_and_its_memo_survive_concurrent_reads_and_clears(emulator: Emulator) -> None:
    settings = settings_for(emulator)
    listings = [{"Action": "DescribeImage", "Region": region} for region in ("cn-bj2", "cn-sh2", "hk", "sg", "tw-tp")]
    with Client(settings, retry=NO_SLEEP, max_workers=1) as reference:
        expected = [[image.image_id for image in reference.describe_images(params)] for params in listings]
    client = shared_client(settings)

    def work(index: int) -> bool:
        rng = random.Random(index)
        for _ in range(12):
            which = rng.randrange(len(listings))
            if rng.random() < 0.2:
                client.clear_memo()
            if [image.image_id for image in client.describe_images(listings[which])] != expected[which]:
                return False
        return True

    assert all(run_threads(work, THREADS * 2))
    assert len({id(shared_client(settings)) for _ in range(THREADS)} | {id(client)}) == 1


def test_shared_client_gives_every_thread_the_same_client(emulator: Emulator) -> None:
    settings = settings_for(emulator)
    barrier = threading.Barrier(THREADS)

    def fetch(index: int) -> int:
        barrier.wait()
        return id(shared_client(settings))

    assert len(set(run_threads(fetch, THREADS))) == 1


def test_identical_concurrent_queries_coalesce_into_one_round_of_requests(emulator: Emulator) -> None:
    params = {"Action": "DescribeImage", "Region": DEMO_REGION}
    expected = reference_listing(emulator, params)
    emulator.latency_ms = 200  # every thread arrives while the first read is still in flight
    barrier = threading.Barrier(THREADS)
    with Client(settings_for(emulator), retry=NO_SLEEP) as client:

        def read(index: int) -> Any:
            barrier.wait()
            return client.describe_images(params)

        results = run_threads(read, THREADS)
        assert all(result is results[0] for result in results) and results[0] == expected
        pages = -(-len(expected) // 100)
        assert pages > 1 and emulator.request_count == client.requests_sent == pages  # one read, for everyone


def test_identical_concurrent_queries_share_a_failure_and_do_not_memoise_it(emulator: Emulator) -> None:
    params = {"Action": "DescribeImage", "Region": DEMO_REGION}
    expected = reference_listing(emulator, params)
    emulator.latency_ms = 200
    emulator.inject("ret_code", value=172)
    barrier = threading.Barrier(THREADS)
    with Client(settings_for(emulator), retry=NO_SLEEP) as client:

        def read(index: int) -> Any:
            barrier.wait()
            try:
                return client.describe_images(params)
            except APIError as error:
                return error.ret_code

        assert run_threads(read, THREADS) == [172] * THREADS
        assert emulator.request_count == 1
        emulator.latency_ms = 0
        assert client.describe_images(params) == expected  # the failure was not memoised


def test_closing_a_client_mid_read_fails_that_lookup_with_a_transport_error() -> None:
    arrived, release = threading.Event(), threading.Event()
    records = [{"ImageId": f"uimage-{n:04d}", "State": "Available", "CreateTime": n} for n in range(100)]

    class Held(requests.Session):
        """Serves ten images per page; holds the page at offset 10 until released."""

        def post(self, url: Any, data: Any = None, json: Any = None, **kwargs: Any) -> requests.Response:
            offset = int(data["Offset"])
            if offset == 10:
                arrived.set()
                release.wait(10)
            answer = requests.Response()
            answer.status_code = 200
            payload = {"RetCode": 0, "TotalCount": len(records), "ImageSet": records[offset:offset + 10]}
            answer.raw = urllib3.HTTPResponse(io.BytesIO(jsonlib.dumps(payload).encode()), preload_content=False)
            return answer

    settings = Settings(public_key="pk", private_key=SecretStr("sk"), region=DEMO_REGION, base_url="http://x")
    client = Client(settings, session=Held(), retry=NO_SLEEP, max_workers=2)
    with ThreadPoolExecutor(1) as runner:
        reading = runner.submit(client.describe_images, {"Action": "DescribeImage", "Region": DEMO_REGION})
        assert arrived.wait(10)
        client.close()  # pages queued behind the two running ones are cancelled
        release.set()
        with pytest.raises(TransportError, match="the client was closed meanwhile"):
            reading.result(timeout=10)


def test_threads_that_build_the_full_models_at_once_all_get_the_one_tuple(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiters of one read may each build the models while the first is still building: one tuple wins."""
    from pulumi_ucloud_images._api import records

    full = records.ImageRecord.full
    gate = threading.Barrier(4)

    def slow_full(self: records.ImageRecord) -> Any:
        if self is first[0]:
            gate.wait(timeout=10)  # every thread is building before any of them stores its tuple
        return full(self)

    params = {"Action": "DescribeImage", "Region": DEMO_REGION}
    with Client(settings_for(emulator), retry=NO_SLEEP) as client:
        first = client.list_records(params)
        monkeypatch.setattr(records.ImageRecord, "full", slow_full)
        results = run_threads(lambda index: client.describe_images(params), 4)
    assert all(result is results[0] for result in results)
