"""A process that looked images up, then forked (multiprocessing's default on Linux, prefork servers): every
child gets the right image or an error, never another child's answer, and never hangs.

The children share the parent's emulator, and ask for two regions in turn, so a socket shared across the fork
would hand a child the other region's answer. Each child reports through a pipe; a child still running after
its time is killed and counted as a hang.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest
from pydantic import SecretStr

from pulumi_ucloud_images import Client, Settings, lookup_images
from pulumi_ucloud_images._api.client import reset_shared_clients, shared_client
from pulumi_ucloud_images._emulator.catalog import synthetic_catalog
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

REGIONS = ("hk", "us-ca")
CHILD_SECONDS = 30.0


def settings(emulator: Emulator, region: str) -> Settings:
    return Settings(public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY), region=region,
                    base_url=emulator.base_url, timeout=10)


def newest(emulator: Emulator, region: str) -> str:
    """What a child asking ``region`` must get: the shared client's answer (the path the children take)."""
    return lookup_images(settings=settings(emulator, region), most_recent=True).image_id


@pytest.fixture(params=[1000, 40], ids=["single-page", "multi-page"])
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    catalog = synthetic_catalog("hk", 150, seed=1) + synthetic_catalog("us-ca", 150, seed=2)
    with Emulator(catalog, max_limit=request.param, latency_ms=10) as started:
        yield started
    reset_shared_clients()


def in_children(jobs: Sequence[Callable[[], str]]) -> list[str]:
    """Fork one child per job; the children start together. Each child's result, ``error ...`` or ``hang``."""
    children = []
    go_read, go_write = os.pipe()
    for job in jobs:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, then leave without running the parent's cleanup
            try:
                os.close(read)
                os.read(go_read, 1)
                try:
                    result = job()
                except BaseException as exc:
                    result = f"error {type(exc).__name__}: {exc}"
                os.write(write, result.encode()[:4000])
            finally:
                os._exit(0)
        os.close(write)
        children.append((pid, read))
    os.write(go_write, b"x" * len(jobs))
    os.close(go_write)
    os.close(go_read)
    results = []
    ends = time.monotonic() + CHILD_SECONDS
    for pid, read in children:
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > ends:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.01)
        with os.fdopen(read, "rb") as pipe:
            results.append(pipe.read().decode() or "hang")
    return results


def alternating(emulator: Emulator, count: int) -> tuple[Sequence[Callable[[], str]], list[str]]:
    expected = {region: newest(emulator, region) for region in REGIONS}
    regions = [REGIONS[index % 2] for index in range(count)]
    jobs = [functools.partial(newest, emulator, region) for region in regions]
    return jobs, [expected[region] for region in regions]


def test_sixty_children_forked_after_lookups_each_get_their_own_regions_image(emulator: Emulator) -> None:
    jobs, expected = alternating(emulator, 60)  # the parent has looked both regions up: its pool holds sockets
    reset_shared_clients()
    newest(emulator, "hk")  # one keep-alive connection left idle in the shared client's pool
    shared_client(settings(emulator, "hk")).clear_memo()  # so every child asks over the network
    for batch in range(0, 60, 20):
        assert in_children(jobs[batch:batch + 20]) == expected[batch:batch + 20]


def test_a_client_made_in_the_parent_is_fresh_in_each_child(emulator: Emulator) -> None:
    clients = {region: Client(settings(emulator, region)) for region in REGIONS}
    expected = {region: lookup_images(client=client, most_recent=True).image_id for region, client in clients.items()}
    for client in clients.values():
        client.clear_memo()  # so each child asks over the network, through the parent's client object
    regions = [REGIONS[index % 2] for index in range(20)]
    jobs = [functools.partial(lambda region: lookup_images(client=clients[region], most_recent=True).image_id, region)
            for region in regions]
    assert in_children(jobs) == [expected[region] for region in regions]
    for client in clients.values():
        client.close()


def test_children_forked_from_threads_while_other_threads_look_up(emulator: Emulator) -> None:
    """Forked while the parent's threads are mid-lookup (holding locks, pages in flight): no child hangs."""
    jobs, expected = alternating(emulator, 8)
    stop = threading.Event()
    failures: list[BaseException] = []

    def busy(region: str) -> None:
        client = Client(settings(emulator, region), max_workers=4)
        while not stop.is_set():
            try:
                lookup_images(client=client, most_recent=True)
            except BaseException as exc:
                failures.append(exc)
                return
            client.clear_memo()
        client.close()

    workers = [threading.Thread(target=busy, args=(region,)) for region in REGIONS * 2]
    for worker in workers:
        worker.start()
    results: list[list[str]] = []
    forkers = [threading.Thread(target=lambda batch=batch: results.append(in_children(jobs[batch:batch + 4])))
               for batch in (0, 4)]
    try:
        for forker in forkers:
            forker.start()
        for forker in forkers:
            forker.join(CHILD_SECONDS + 10)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert not failures
    assert sorted(itertools.chain.from_iterable(results)) == sorted(expected)


def _child_lookup(base_url: str, region: str) -> str:
    emulator_settings = Settings(public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY), region=region,
                                 base_url=base_url, timeout=10)
    return lookup_images(settings=emulator_settings, most_recent=True).image_id


def test_a_multiprocessing_fork_pool_after_lookups(emulator: Emulator) -> None:
    _, expected = alternating(emulator, 12)
    regions = [REGIONS[index % 2] for index in range(12)]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        waiting = pool.starmap_async(_child_lookup, [(emulator.base_url, region) for region in regions])
        assert waiting.get(timeout=CHILD_SECONDS) == expected
