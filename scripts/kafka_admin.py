#!/usr/bin/env python3
"""Small Kafka admin and check tool for the test broker (see scripts/kafka.sh).

Run it through `scripts/kafka.sh admin ...`, which provides a venv with confluent-kafka.

Subcommands:
  create BOOTSTRAP NAME[:PARTITIONS] ... [--config KEY=VALUE ...]
      Create topics (replication factor 1, 1 partition by default). An existing topic is not
      an error. Waits until the topics show up in the broker's metadata.
  list BOOTSTRAP
      Print each topic and its partition count.
  describe BOOTSTRAP TOPIC ...
      Print the topic configs (DescribeConfigs).
  api-versions BOOTSTRAP
      Print the API versions the broker advertises (a raw ApiVersions v0 request; needs only the
      standard library).
  smoke BOOTSTRAP [--topic T] [--messages N] [--customers C] [--session-timeout-ms MS]
      Produce N messages keyed by customer id, consume them back in a fresh consumer group,
      commit, check the committed offsets, and check that a second consumer in the same group
      resumes after them. Prints counts and timings as JSON; exits 1 on any failure.
  probe BOOTSTRAP
      Feature checks: list_topics, describe_configs, a compacted topic, transactions.
  produce BOOTSTRAP TOPIC FILE
      Produce each JSON line of FILE (- for stdin) keyed by its customer_id, as the service
      expects. Prints the count.
  tail BOOTSTRAP TOPIC [--max N] [--idle S]
      Print the topic's messages from the beginning (key, then value), until N messages or S
      seconds without one.
"""

import argparse
import json
import socket
import struct
import sys
import time
import uuid

SESSION_TIMEOUT_MS_DEFAULT = 6000


def _ck():
    try:
        import confluent_kafka  # noqa: F401
        import confluent_kafka.admin  # noqa: F401
    except ImportError:
        sys.exit("kafka_admin.py: confluent-kafka is not installed; run it via `scripts/kafka.sh admin ...`")
    return confluent_kafka


def _admin(bootstrap):
    ck = _ck()
    return ck.admin.AdminClient({"bootstrap.servers": bootstrap})


def _parse_configs(items):
    configs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            sys.exit(f"kafka_admin.py: bad --config {item!r}, expected KEY=VALUE")
        configs[key] = value
    return configs


def _parse_topic_spec(spec):
    name, sep, parts = spec.partition(":")
    if not name:
        sys.exit(f"kafka_admin.py: bad topic spec {spec!r}")
    if not sep:
        return name, 1
    try:
        n = int(parts)
    except ValueError:
        n = 0
    if n < 1:
        sys.exit(f"kafka_admin.py: bad partition count in {spec!r}")
    return name, n


def _wait_for_topics(admin, wanted, timeout_s=15.0):
    """Waits until every topic in `wanted` (name -> partitions) is in the metadata."""
    deadline = time.monotonic() + timeout_s
    while True:
        md = admin.list_topics(timeout=5)
        missing = {n: p for n, p in wanted.items() if n not in md.topics or md.topics[n].error is not None}
        if not missing:
            return md
        if time.monotonic() > deadline:
            sys.exit(f"kafka_admin.py: topics not in metadata after {timeout_s}s: {sorted(missing)}")
        time.sleep(0.2)


def cmd_create(args):
    ck = _ck()
    admin = _admin(args.bootstrap)
    configs = _parse_configs(args.config)
    wanted = dict(_parse_topic_spec(s) for s in args.topics)
    new = [ck.admin.NewTopic(n, num_partitions=p, replication_factor=1, config=configs) for n, p in wanted.items()]
    failed = False
    for name, fut in admin.create_topics(new, operation_timeout=10, request_timeout=15).items():
        try:
            fut.result()
            print(f"created {name} partitions={wanted[name]}", file=sys.stderr)
        except ck.KafkaException as e:
            err = e.args[0]
            if err.code() == ck.KafkaError.TOPIC_ALREADY_EXISTS:
                print(f"exists  {name}", file=sys.stderr)
            else:
                print(f"kafka_admin.py: creating {name} failed: {err}", file=sys.stderr)
                failed = True
    if failed:
        return 1
    md = _wait_for_topics(admin, wanted)
    for name, parts in wanted.items():
        have = len(md.topics[name].partitions)
        if have != parts:
            print(f"kafka_admin.py: warning: {name} has {have} partitions, not {parts}", file=sys.stderr)
    return 0


def cmd_list(args):
    md = _admin(args.bootstrap).list_topics(timeout=10)
    for name in sorted(md.topics):
        t = md.topics[name]
        print(f"{name}\tpartitions={len(t.partitions)}" + (f"\terror={t.error}" if t.error else ""))
    return 0


def _describe_topic_configs(admin, topics):
    ck = _ck()
    resources = [ck.admin.ConfigResource(ck.admin.ResourceType.TOPIC, t) for t in topics]
    out = {}
    for res, fut in admin.describe_configs(resources, request_timeout=10).items():
        out[res.name] = {k: v.value for k, v in fut.result().items()}
    return out


def cmd_describe(args):
    admin = _admin(args.bootstrap)
    for topic, configs in _describe_topic_configs(admin, args.topics).items():
        print(topic)
        for k in sorted(configs):
            print(f"  {k}={configs[k]}")
    return 0


# Kafka protocol API keys, for printing ApiVersions.
API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 4: "LeaderAndIsr",
    5: "StopReplica", 6: "UpdateMetadata", 7: "ControlledShutdown", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup",
    14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups", 17: "SaslHandshake",
    18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics", 21: "DeleteRecords",
    22: "InitProducerId", 23: "OffsetForLeaderEpoch", 24: "AddPartitionsToTxn",
    25: "AddOffsetsToTxn", 26: "EndTxn", 27: "WriteTxnMarkers", 28: "TxnOffsetCommit",
    29: "DescribeAcls", 30: "CreateAcls", 31: "DeleteAcls", 32: "DescribeConfigs",
    33: "AlterConfigs", 34: "AlterReplicaLogDirs", 35: "DescribeLogDirs", 36: "SaslAuthenticate",
    37: "CreatePartitions", 38: "CreateDelegationToken", 39: "RenewDelegationToken",
    40: "ExpireDelegationToken", 41: "DescribeDelegationToken", 42: "DeleteGroups",
    43: "ElectLeaders", 44: "IncrementalAlterConfigs", 45: "AlterPartitionReassignments",
    46: "ListPartitionReassignments", 47: "OffsetDelete", 48: "DescribeClientQuotas",
    49: "AlterClientQuotas", 50: "DescribeUserScramCredentials", 51: "AlterUserScramCredentials",
    52: "Vote", 53: "BeginQuorumEpoch", 54: "EndQuorumEpoch", 55: "DescribeQuorum",
    56: "AlterPartition", 57: "UpdateFeatures", 58: "Envelope", 59: "FetchSnapshot",
    60: "DescribeCluster", 61: "DescribeProducers", 62: "BrokerRegistration",
    63: "BrokerHeartbeat", 64: "UnregisterBroker", 65: "DescribeTransactions",
    66: "ListTransactions", 67: "AllocateProducerIds", 68: "ConsumerGroupHeartbeat",
    69: "ConsumerGroupDescribe", 70: "ControllerRegistration", 71: "GetTelemetrySubscriptions",
    72: "PushTelemetry", 73: "AssignReplicasToDirs", 74: "ListClientMetricsResources",
    75: "DescribeTopicPartitions",
}


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        buf += chunk
    return buf


def api_versions(bootstrap, timeout=10.0):
    """Sends ApiVersions v0 and returns [(api_key, min_version, max_version)]."""
    host, _, port = bootstrap.rpartition(":")
    client_id = b"callahead-kafka-admin"
    correlation_id = 7
    # Request header v1: api_key, api_version, correlation_id, client_id (int16 length + bytes).
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        resp = _recv_exact(sock, size)
    cid, error_code, count = struct.unpack_from(">ihi", resp, 0)
    if cid != correlation_id:
        raise RuntimeError(f"correlation id {cid} != {correlation_id}")
    if error_code != 0:
        raise RuntimeError(f"ApiVersions error code {error_code}")
    return [struct.unpack_from(">hhh", resp, 10 + 6 * i) for i in range(count)]


def cmd_api_versions(args):
    for key, lo, hi in sorted(api_versions(args.bootstrap)):
        print(f"{key:3d} {API_NAMES.get(key, '?'):28s} v{lo}..v{hi}")
    return 0


def _consumer_conf(bootstrap, group, session_timeout_ms, **extra):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "session.timeout.ms": session_timeout_ms,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    conf.update(extra)
    return conf


def _consume_run(consumer, topic, run_id, want, timeout_s, stop_after_join_s=None):
    """Subscribes and polls until `want` messages of `run_id` arrived, or the timeout, or
    `stop_after_join_s` seconds after the first assignment.

    Returns (join_seconds or None, {partition: count}, {key: set(partitions)}, other_count)."""
    ck = _ck()
    t0 = time.monotonic()
    joined = {}

    def on_assign(c, parts):
        joined.setdefault("at", time.monotonic())
        joined["partitions"] = sorted(p.partition for p in parts)

    consumer.subscribe([topic], on_assign=on_assign)
    per_partition, key_parts, others, got = {}, {}, 0, 0
    deadline = t0 + timeout_s
    while got < want and time.monotonic() < deadline:
        if stop_after_join_s is not None and "at" in joined and time.monotonic() > joined["at"] + stop_after_join_s:
            break
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == ck.KafkaError._PARTITION_EOF:
                continue
            raise ck.KafkaException(msg.error())
        value = msg.value() or b""
        if not value.startswith(run_id.encode() + b"|"):
            others += 1
            continue
        got += 1
        per_partition[msg.partition()] = per_partition.get(msg.partition(), 0) + 1
        key_parts.setdefault(msg.key().decode(), set()).add(msg.partition())
    join_s = joined["at"] - t0 if "at" in joined else None
    return join_s, per_partition, key_parts, others, joined.get("partitions")


def cmd_smoke(args):
    ck = _ck()
    result = {"bootstrap": args.bootstrap, "topic": args.topic, "messages": args.messages}
    ok = True
    run_id = uuid.uuid4().hex[:12]
    group = f"smoke-{run_id}"
    result["group"] = group

    # Produce N messages keyed by customer id.
    t0 = time.monotonic()
    producer = ck.Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "enable.idempotence": True})
    delivered, errors, key_parts = 0, [], {}

    def on_delivery(err, msg):
        nonlocal delivered
        if err is not None:
            errors.append(str(err))
        else:
            delivered += 1
            key_parts.setdefault(msg.key().decode(), set()).add(msg.partition())

    for i in range(args.messages):
        key = f"cust-{i % args.customers:04d}"
        value = f"{run_id}|{i}|call-event".encode()
        producer.produce(args.topic, key=key.encode(), value=value, on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(30)
    result["produce_s"] = round(time.monotonic() - t0, 3)
    result["produced"] = delivered
    if remaining or errors or delivered != args.messages:
        ok = False
        result["produce_errors"] = errors[:5] + ([f"{remaining} undelivered"] if remaining else [])
    if any(len(p) != 1 for p in key_parts.values()):
        ok = False
        result["produce_key_spread"] = "a key was written to more than one partition"

    # Consume them back in a fresh group, then commit synchronously.
    t1 = time.monotonic()
    consumer = ck.Consumer(_consumer_conf(args.bootstrap, group, args.session_timeout_ms))
    join_s, per_partition, ckey_parts, others, assigned = _consume_run(
        consumer, args.topic, run_id, args.messages, args.timeout
    )
    result["group_join_s"] = round(join_s, 3) if join_s is not None else None
    result["assigned_partitions"] = assigned
    result["consume_s"] = round(time.monotonic() - t1, 3)
    result["consumed"] = sum(per_partition.values())
    result["consumed_per_partition"] = {str(k): v for k, v in sorted(per_partition.items())}
    result["other_messages_seen"] = others
    if result["consumed"] != args.messages:
        ok = False
    if any(len(p) != 1 for p in ckey_parts.values()):
        ok = False
        result["consume_key_spread"] = "a key was read from more than one partition"

    t2 = time.monotonic()
    try:
        committed = consumer.commit(asynchronous=False)
        commit_errors = [str(tp.error) for tp in committed or [] if tp.error]
    except ck.KafkaException as e:
        commit_errors = [str(e)]
    result["commit_s"] = round(time.monotonic() - t2, 3)
    if commit_errors:
        ok = False
        result["commit_errors"] = commit_errors
    positions = {tp.partition: tp.offset for tp in consumer.position(consumer.assignment())}
    consumer.close()

    # The committed offsets, read back by a new client of the same group.
    t3 = time.monotonic()
    checker = ck.Consumer(_consumer_conf(args.bootstrap, group, args.session_timeout_ms))
    parts = [ck.TopicPartition(args.topic, p) for p in positions]
    committed = {tp.partition: tp.offset for tp in checker.committed(parts, timeout=10)}
    checker.close()
    result["committed_offsets"] = {str(k): v for k, v in sorted(committed.items())}
    result["committed_matches_position"] = committed == positions
    result["offset_fetch_s"] = round(time.monotonic() - t3, 3)
    if committed != positions:
        ok = False
        result["positions"] = {str(k): v for k, v in sorted(positions.items())}

    # A second member of the group must resume after the commit: none of this run's messages.
    if not args.no_resume:
        t4 = time.monotonic()
        resumer = ck.Consumer(_consumer_conf(args.bootstrap, group, args.session_timeout_ms))
        rjoin, rper, _, _, _ = _consume_run(
            resumer, args.topic, run_id, 1, args.timeout, stop_after_join_s=args.resume_wait
        )
        resumer.close()
        result["resume_group_join_s"] = round(rjoin, 3) if rjoin is not None else None
        result["resume_redelivered"] = sum(rper.values())
        result["resume_s"] = round(time.monotonic() - t4, 3)
        if rjoin is None or result["resume_redelivered"] != 0:
            ok = False

    result["total_s"] = round(time.monotonic() - t0, 3)
    result["ok"] = ok
    print(json.dumps(result, indent=2))
    return 0 if ok else 1


def _step(report, name, fn):
    t = time.monotonic()
    try:
        detail = fn()
        report.append({"check": name, "ok": True, "s": round(time.monotonic() - t, 3), "detail": detail})
    except Exception as e:  # noqa: BLE001 - a probe reports every failure
        report.append({"check": name, "ok": False, "s": round(time.monotonic() - t, 3), "error": f"{type(e).__name__}: {e}"})


def cmd_probe(args):
    ck = _ck()
    admin = _admin(args.bootstrap)
    tag = uuid.uuid4().hex[:8]
    report = []

    def versions():
        v = {API_NAMES.get(k, str(k)): f"{lo}..{hi}" for k, lo, hi in api_versions(args.bootstrap)}
        return v

    _step(report, "api_versions", versions)
    _step(report, "list_topics", lambda: {n: len(t.partitions) for n, t in admin.list_topics(timeout=10).topics.items()})

    compacted = f"probe-compact-{tag}"

    def create_compacted():
        fut = admin.create_topics(
            [ck.admin.NewTopic(compacted, num_partitions=1, replication_factor=1, config={"cleanup.policy": "compact"})],
            operation_timeout=10,
        )[compacted]
        fut.result()
        _wait_for_topics(admin, {compacted: 1})
        return "created"

    _step(report, "create_topic cleanup.policy=compact", create_compacted)
    _step(report, "describe_configs (compacted topic)", lambda: _describe_topic_configs(admin, [compacted]))

    def compaction_effect():
        # Write two values under one key, then read the partition: compaction would keep one.
        p = ck.Producer({"bootstrap.servers": args.bootstrap})
        for v in (b"v1", b"v2"):
            p.produce(compacted, key=b"k", value=v)
        p.flush(10)
        c = ck.Consumer(_consumer_conf(args.bootstrap, f"probe-{tag}", SESSION_TIMEOUT_MS_DEFAULT))
        c.assign([ck.TopicPartition(compacted, 0, ck.OFFSET_BEGINNING)])
        seen, end = [], time.monotonic() + 5
        while time.monotonic() < end and len(seen) < 2:
            m = c.poll(0.2)
            if m is not None and not m.error():
                seen.append(m.value().decode())
        c.close()
        return {"values_read_back_immediately": seen}

    _step(report, "compacted topic read-back", compaction_effect)

    def alter_config():
        res = ck.admin.ConfigResource(
            ck.admin.ResourceType.TOPIC,
            compacted,
            incremental_configs=[
                ck.admin.ConfigEntry("retention.ms", "60000", incremental_operation=ck.admin.AlterConfigOpType.SET)
            ],
        )
        for fut in admin.incremental_alter_configs([res]).values():
            fut.result()
        return _describe_topic_configs(admin, [compacted])

    _step(report, "incremental_alter_configs", alter_config)
    _step(report, "list_consumer_groups", lambda: [g.group_id for g in admin.list_consumer_groups(request_timeout=10).result().valid])

    txn_topic = f"probe-txn-{tag}"

    def transactions():
        admin.create_topics([ck.admin.NewTopic(txn_topic, num_partitions=1, replication_factor=1)])[txn_topic].result()
        _wait_for_topics(admin, {txn_topic: 1})

        def read(iso, secs=3.0):
            c = ck.Consumer(
                _consumer_conf(args.bootstrap, f"probe-{uuid.uuid4().hex[:8]}", SESSION_TIMEOUT_MS_DEFAULT, **{"isolation.level": iso})
            )
            c.assign([ck.TopicPartition(txn_topic, 0, ck.OFFSET_BEGINNING)])
            seen, end = [], time.monotonic() + secs
            while time.monotonic() < end:
                m = c.poll(0.2)
                if m is not None and not m.error():
                    seen.append(m.value().decode())
            c.close()
            return seen

        p = ck.Producer({"bootstrap.servers": args.bootstrap, "transactional.id": f"probe-{tag}", "transaction.timeout.ms": 10000})
        p.init_transactions(15)
        p.begin_transaction()
        p.produce(txn_topic, key=b"k", value=b"aborted")
        p.flush(10)
        out = {"read_committed while open (expect [])": read("read_committed")}
        p.abort_transaction(15)
        out["read_committed after abort (expect [])"] = read("read_committed")
        p.begin_transaction()
        p.produce(txn_topic, key=b"k", value=b"committed")
        p.commit_transaction(15)
        out["read_committed after commit (expect ['committed'])"] = read("read_committed")
        out["read_uncommitted after commit"] = read("read_uncommitted")
        return out

    _step(report, "transactions (calls succeed; see detail for isolation)", transactions)

    def delete_topics():
        for fut in admin.delete_topics([compacted, txn_topic], operation_timeout=10).values():
            fut.result()
        return "deleted"

    _step(report, "delete_topics", delete_topics)
    print(json.dumps(report, indent=2))
    return 0


def cmd_produce(args):
    ck = _ck()
    producer = ck.Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5})
    source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
    sent = 0
    for n, line in enumerate(source, 1):
        line = line.strip()
        if not line:
            continue
        try:
            key = json.loads(line).get("customer_id")
        except ValueError:
            key = None  # the service will dead-letter it, as it should
        while True:
            try:
                producer.produce(args.topic, value=line.encode(), key=key.encode() if isinstance(key, str) else None)
                break
            except BufferError:
                producer.poll(0.1)
        sent += 1
        if n % 10000 == 0:
            producer.poll(0)
    left = producer.flush(60)
    if left:
        sys.exit(f"kafka_admin.py: {left} messages not acknowledged within 60 s")
    print(json.dumps({"topic": args.topic, "produced": sent}))
    return 0


def cmd_tail(args):
    ck = _ck()
    consumer = ck.Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": f"callahead-tail-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": SESSION_TIMEOUT_MS_DEFAULT,
    })
    consumer.subscribe([args.topic])
    seen, last = 0, time.monotonic()
    try:
        while seen < args.max and time.monotonic() - last < args.idle:
            m = consumer.poll(0.5)
            if m is None or m.error():
                continue
            last = time.monotonic()
            seen += 1
            key = m.key().decode(errors="replace") if m.key() else ""
            print(f"{key}\t{m.value().decode(errors='replace')}", flush=True)
    finally:
        consumer.close()
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("create", help="create topics")
    p.add_argument("bootstrap")
    p.add_argument("topics", nargs="+", metavar="NAME[:PARTITIONS]")
    p.add_argument("--config", action="append", metavar="KEY=VALUE", help="topic config, for every topic")
    p.set_defaults(fn=cmd_create)

    p = sub.add_parser("list", help="list topics")
    p.add_argument("bootstrap")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("describe", help="describe topic configs")
    p.add_argument("bootstrap")
    p.add_argument("topics", nargs="+")
    p.set_defaults(fn=cmd_describe)

    p = sub.add_parser("api-versions", help="print the advertised API versions")
    p.add_argument("bootstrap")
    p.set_defaults(fn=cmd_api_versions)

    p = sub.add_parser("smoke", help="produce, consume in a group, commit")
    p.add_argument("bootstrap")
    p.add_argument("--topic", default="t-in")
    p.add_argument("--messages", type=int, default=100)
    p.add_argument("--customers", type=int, default=10)
    p.add_argument("--session-timeout-ms", type=int, default=SESSION_TIMEOUT_MS_DEFAULT)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the messages")
    p.add_argument("--resume-wait", type=float, default=3.0, help="seconds the resume check polls after joining")
    p.add_argument("--no-resume", action="store_true", help="skip the resume-after-commit check")
    p.set_defaults(fn=cmd_smoke)

    p = sub.add_parser("probe", help="feature checks")
    p.add_argument("bootstrap")
    p.set_defaults(fn=cmd_probe)

    p = sub.add_parser("produce", help="produce JSON lines keyed by customer_id")
    p.add_argument("bootstrap")
    p.add_argument("topic")
    p.add_argument("file")
    p.set_defaults(fn=cmd_produce)

    p = sub.add_parser("tail", help="print a topic from the beginning")
    p.add_argument("bootstrap")
    p.add_argument("topic")
    p.add_argument("--max", type=int, default=1_000_000)
    p.add_argument("--idle", type=float, default=10.0, help="stop after this many seconds without a message")
    p.set_defaults(fn=cmd_tail)

    args = ap.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
