"""nodetool on the test node: many commands in one JVM (`NodeToolSession`), one alone (`Node.nodetool`).

The node is the shared test node (its run dir: ``$L1DB_CASSANDRA_RUN_DIR``).
What the commands do to a keyspace (flush, snapshot, import) is tested through
l1db_state in test_state.py; here, the session itself.
"""

from __future__ import annotations

import pytest
from conftest import SERVERS

from l1db.cassandra.nodetool import Node, NodeToolSession, cluster_nodes
from l1db.state import StateError


@pytest.fixture
def node() -> Node:
    (first,) = cluster_nodes(None, (SERVERS.cassandra_hosts.split(",")[0],))
    return first


def test_a_session_runs_its_commands_in_one_jvm(node: Node) -> None:
    with NodeToolSession() as nodetool:
        assert nodetool.run(node, "statusbinary", what="asking").strip() == "running"
        proc = nodetool._proc
        assert proc is not None and proc.poll() is None
        # The same JVM answers the next commands: a failure too, in one line, and the session goes on.
        with pytest.raises(StateError) as caught:
            nodetool.run(node, "flush", "--", "no_such_keyspace_l1db", what="flushing a keyspace that is not")
        message = str(caught.value)
        assert message.startswith("flushing a keyspace that is not (nodetool on node 1, ") and "\n" not in message
        assert "no_such_keyspace_l1db" in message
        assert nodetool.run(node, "statusgossip", what="asking").strip() == "running"
        assert nodetool._proc is proc
        # The output of a nodetool JVM of its own, without the lines its logging prints as it starts.
        alone = node.nodetool("getcompactionthroughput", what="asking")
        assert "|-INFO in ch.qos.logback" in alone
        together = nodetool.run(node, "getcompactionthroughput", what="asking")
        assert together.startswith("Current compaction throughput:") and alone.endswith(together)
    assert proc.wait(timeout=30) == 0


def test_arguments_the_protocol_cannot_carry_run_alone(node: Node) -> None:
    with NodeToolSession() as nodetool:
        # A tab in an argument (a keyspace name cannot hold one: nodetool refuses it, as a JVM of its own).
        with pytest.raises(StateError, match="flushing"):
            nodetool.run(node, "flush", "--", "a\tb", what="flushing")
        assert nodetool._proc is None
