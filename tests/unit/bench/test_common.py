"""bench.common: the ports a system with replicas binds (so a bench can check they are free)."""

from __future__ import annotations

from bench.common import replica_ports


def test_one_replica_binds_each_service_port_and_five_metrics_ports() -> None:
    assert replica_ports([50051, 50052], 9101, 1) == [50051, 50052, *range(9101, 9106)]


def test_each_further_replica_binds_ports_100_and_metrics_ports_10_higher() -> None:
    ports = replica_ports([50051], 9101, 2)

    assert ports[:2] == [50051, 50151]
    assert sorted(ports[2:]) == [*range(9101, 9106), *range(9111, 9116)]
