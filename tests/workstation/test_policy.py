"""An attempt's share of its host, computed by hand for the awkward cases."""

from __future__ import annotations

import itertools

from workstation.backends import SandboxRequest
from workstation.policy import cpu_set


def request(gpus: tuple[int, ...] = (), host_gpus: int = 8, cpus: int = 0) -> SandboxRequest:
    return SandboxRequest(attempt_id=1, gpus=gpus, host_gpu_count=host_gpus, cpus=cpus)


def test_one_gpu_of_eight_gets_the_eighth_of_the_cores_next_to_it() -> None:
    assert cpu_set(request((3,), cpus=13), list(range(104))) == list(range(39, 52))  # 13 cores from 3 × 13
    assert cpu_set(request((3,), cpus=13), list(range(8))) == [3]


def test_two_gpus_get_two_eighths_and_never_more_than_the_environment_asks() -> None:
    assert cpu_set(request((2, 3)), list(range(16))) == [4, 5, 6, 7]
    assert cpu_set(request((2, 3), cpus=3), list(range(16))) == [4, 5, 6]


def test_a_share_below_one_core_is_still_one_core_within_the_host() -> None:
    assert cpu_set(request((7,)), [0, 1]) == [1]
    assert cpu_set(request((0,)), [0, 1]) == [0]


def test_an_environment_without_gpus_gets_the_host_up_to_what_it_asks() -> None:
    assert cpu_set(request((), cpus=20), list(range(8))) == list(range(8))
    assert cpu_set(request((), cpus=3), list(range(8))) == [0, 1, 2]


def test_the_cores_are_the_hosts_own_numbers() -> None:
    assert cpu_set(request((1,), host_gpus=2), [4, 5, 6, 7]) == [6, 7]


def test_gpus_that_are_not_neighbours_get_the_cores_beside_each_and_share_none_with_the_gpu_between() -> None:
    # 16 cores, 8 GPUs: GPU i owns cores 2i and 2i+1.
    assert cpu_set(request((1, 5)), list(range(16))) == [2, 3, 10, 11]
    assert cpu_set(request((2,)), list(range(16))) == [4, 5]
    assert cpu_set(request((1, 5), cpus=3), list(range(16))) == [2, 3, 10]


def test_any_two_disjoint_gpu_sets_on_one_host_get_disjoint_cores() -> None:
    cores = list(range(24))
    for size_a, size_b in [(1, 1), (2, 1), (2, 2), (3, 4)]:
        for a in itertools.combinations(range(8), size_a):
            rest = [i for i in range(8) if i not in a]
            for b in itertools.combinations(rest, size_b):
                assert not set(cpu_set(request(a), cores)) & set(cpu_set(request(b), cores)), (a, b)
