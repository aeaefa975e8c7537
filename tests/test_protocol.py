"""Framing (state-model §1) and the reconnecting client."""

from __future__ import annotations

import random
import statistics
from typing import Any, cast

import pytest
import pytest_twisted
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.defer import maybeDeferred
from twisted.internet.error import ConnectionDone, ConnectionLost, ConnectionRefusedError
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from mitelacd.feed.protocol import ACDReceiver, PBXClientFactory
from mitelacd.floor.records import AgentEvent, Malformed, ParseResult, Refresh
from mitelacd.floor.state import FloorState
from mitelacd.testing import capture_log

PBX = IPv4Address("TCP", "127.0.0.1", 15373)

#: Record bodies from the protocol notes' examples (STX and terminator off).
BODIES = [
    b"74R13024320140115",
    b"12A0815022001   1001   00",
    b"14K08151061000000100000000000",
    b"15Q08151086000000100000000000",
    b"17T0816442001   1001   01",
    b"18U0816472001   1001   01",
    b"19G0816472001   1001   01860",
    b"20N0819032001   1001   01",
    b"22L0822122001   1001   00",
    b"30E0900002001   1001   05",
    b"34C1001012050          00",
    b"39B1200002001   1001   00",
    b"41A1300002003   1004   00",
    b"99G1400015551234123456701007",
    b"00J1403205551234123456701",
    b"01A1500002004   10045  00",
    b"02K0818106100000000000",
]


class RecordingFloor(FloorState):
    """A real floor that also keeps every result it was handed."""

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.results: list[ParseResult] = []

    def recordReceived(self, result: ParseResult, source: str | None = None) -> None:
        self.results.append(result)
        super().recordReceived(result, source)


def receiver(factory: PBXClientFactory) -> ACDReceiver:
    """The protocol ``factory`` builds for a new connection to the PBX."""
    # Twisted types what buildProtocol returns as a protocol whose ``factory``
    # is a plain Factory, which a protocol that names its factory's class
    # (ACDReceiver.factory) can never be; the check below is the real one.
    proto = cast(ACDReceiver, factory.buildProtocol(PBX))
    assert isinstance(proto, ACDReceiver)
    return proto


def connect(clock: Clock | None = None) -> tuple[ACDReceiver, StringTransport, RecordingFloor]:
    clock = clock or Clock()
    floor = RecordingFloor(clock)
    factory = PBXClientFactory(floor, clock)
    proto = receiver(factory)
    transport = StringTransport(peerAddress=PBX)
    proto.makeConnection(transport)
    return proto, transport, floor


def feed(chunks: list[bytes]) -> tuple[RecordingFloor, StringTransport]:
    proto, transport, floor = connect()
    for chunk in chunks:
        proto.dataReceived(chunk)
    return floor, transport


def cut(stream: bytes, points: list[int]) -> list[bytes]:
    edges = [0, *sorted(set(p % (len(stream) + 1) for p in points)), len(stream)]
    return [stream[a:b] for a, b in zip(edges, edges[1:])]


def comparable(floor: RecordingFloor) -> tuple[Any, ...]:
    # The version counts changes, and a read is one change: it depends on the cuts.
    snapshot = {k: v for k, v in floor.snapshot().items() if k != "version"}
    return (floor.results, floor.legacy(), snapshot)


def test_crlf_records_in_one_read() -> None:
    stream = b"".join(b"\x02" + body + b"\r\n" for body in BODIES)
    floor, transport = feed([stream])
    assert [r.seq for r in floor.results] == [int(b[:2]) for b in BODIES]
    assert not any(isinstance(r, Malformed) for r in floor.results)
    assert not transport.disconnecting
    assert floor.legacy()["agents"] == {
        "1001": "out",
        "1004": "in",
        "1234567": "idle",
        "10045": "in",
    }


@pytest.mark.parametrize("reads", ["one", "each"])
def test_a_record_is_one_line_when_it_follows_a_line_end(reads: str) -> None:
    """Records end in CR LF: the framing adds no empty line between them."""
    records = [b"\x02" + body + b"\r\n" for body in BODIES[:5]]
    proto, _, floor = connect()
    lines: list[bytes] = []
    original = proto.lineReceived

    def seen(line: bytes) -> None:
        lines.append(line)
        original(line)

    proto.lineReceived = seen  # type: ignore[method-assign]
    for data in [b"".join(records)] if reads == "one" else records:
        proto.dataReceived(data)
    assert lines == [r.rstrip(b"\n") for r in records]
    assert [r.seq for r in floor.results] == [int(b[:2]) for b in BODIES[:5]]


def test_coalesced_read_from_the_notes_splits_into_three() -> None:
    floor, _ = feed(
        [
            b"\x0204K08181061000000100000000000\r\n\x0205Q08181086000000100000000000"
            b"\r\n\x0206R08181020240311\r\n"
        ]
    )
    assert [(r.seq, r.code) for r in floor.results] == [(4, "K"), (5, "Q"), (6, "R")]


def test_record_split_over_reads_from_the_notes() -> None:
    floor, _ = feed([b"\x0207G0820002001   10", b"01   01860\r\n"])
    (record,) = floor.results
    assert isinstance(record, AgentEvent)
    assert (record.agent, record.dn, record.path) == ("1001", "2001", "860")


def test_bare_lf_and_stx_only_terminators() -> None:
    # The last record has no terminator yet: it is held until one arrives.
    floor, _ = feed(
        [
            b"\x0212A0815022001   1001   00\n\x0213D0815022001   1001   00\x0214J0815022001   1001   01"
        ]
    )
    assert [r.code for r in floor.results] == ["A", "D"]


def test_nuls_and_noise_before_stx_are_dropped_and_counted() -> None:
    floor, _ = feed(
        [b"\x00\x00\x0212A0815022001   1001   00\r\n\x00garbage\x0213D0815022001   1001   00\r\n"]
    )
    assert [r.code for r in floor.results] == ["A", "D"]
    # NUL fill is not noise; "garbage" is.
    assert floor.feed.noise == 1


def test_trailing_nul_and_spaces_are_stripped() -> None:
    floor, _ = feed([b"\x0274R13024320140115 \x00\x00\r\n"])
    (record,) = floor.results
    assert isinstance(record, Refresh)
    assert record.date_raw == "20140115"


def test_unparsable_record_counted_and_connection_kept() -> None:
    floor, transport = feed(
        [b"\x0212y0815022001|3033|1007\r\n\x02\r\n\x0213A0815022001   1001   00\r\n"]
    )
    assert [type(r).__name__ for r in floor.results] == ["Malformed", "Malformed", "AgentEvent"]
    assert floor.feed.unparsable == 2
    assert floor.legacy()["agents"] == {"1001": "in"}
    assert not transport.disconnecting


def test_overlong_line_is_dropped_without_losing_the_connection() -> None:
    proto, transport, floor = connect()
    proto.dataReceived(b"\x02" + b"9" * 3000)
    proto.dataReceived(b"9" * 3000)  # now past MAX_LENGTH with no terminator
    proto.dataReceived(b"9" * 3000 + b"\r\n\x0212A0815022001   1001   00\r\n")
    assert not transport.disconnecting
    assert [r.code for r in floor.results] == ["A"]
    assert floor.feed.noise == 1


def test_overlong_terminated_line_keeps_what_follows_in_the_same_read() -> None:
    proto, transport, floor = connect()
    proto.dataReceived(
        b"x" * 5000 + b"\n\x0212A0815022001   1001   00\r\n\x0213C0815022001   1001   00\r\n"
    )
    assert not transport.disconnecting
    assert [r.code for r in floor.results] == ["A", "C"]


record_bodies = st.sampled_from(BODIES)
terminators = st.sampled_from([b"\r\n", b"\n", b"", b"\r\n\x00\x00", b" \r\n"])
noise = st.sampled_from([b"", b"\x00", b"junk", b"\r\n"])


@st.composite
def streams(draw: Any) -> tuple[bytes, int]:
    parts = []
    records = draw(st.lists(record_bodies, min_size=1, max_size=30))
    for body in records:
        term = draw(terminators)
        parts.append(b"\x02" + body + term)
        if term.endswith(b"\n"):
            parts.append(draw(noise))
    parts.append(b"\r\n")  # close the last record
    return b"".join(parts), len(records)


@settings(max_examples=300, deadline=None)
@given(streams(), st.lists(st.integers(min_value=0), max_size=40))
def test_any_chunking_gives_the_same_records_and_state(
    stream_and_count: tuple[bytes, int], points: list[int]
) -> None:
    stream, count = stream_and_count
    whole, _ = feed([stream])
    chunked, _ = feed(cut(stream, points))
    assert comparable(chunked) == comparable(whole)
    assert len(whole.results) == count
    assert not any(isinstance(r, Malformed) for r in whole.results)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=600), max_size=20))
def test_arbitrary_bytes_never_raise_or_disconnect(chunks: list[bytes]) -> None:
    floor, transport = feed(chunks)
    assert not transport.disconnecting
    # Every result handed over is accounted for in the feed's counters.
    counted = floor.feed.unparsable + sum(floor.feed.records_by_code.values())
    assert counted == len(floor.results)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=10))
def test_good_record_after_arbitrary_bytes_and_a_terminator_is_read(chunks: list[bytes]) -> None:
    proto, transport, floor = connect()
    for chunk in chunks:
        proto.dataReceived(chunk)
    proto.dataReceived(b"\r\n\x0212A0815022001   7777   00\r\n")
    assert not transport.disconnecting
    assert floor.legacy()["agents"]["7777"] == "in"


def test_watchdog_aborts_a_silent_link() -> None:
    clock = Clock()
    proto, transport, floor = connect(clock)
    clock.advance(59)
    proto.dataReceived(b"\x0274R13024320140115\r\n")
    clock.advance(59)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.disconnecting  # abortConnection on a StringTransport


def test_first_valid_record_resets_the_backoff() -> None:
    clock = Clock()
    floor = FloorState(clock)
    factory = PBXClientFactory(floor, clock)
    factory.delay = 20.0
    factory.retries = 4
    proto = receiver(factory)
    proto.makeConnection(StringTransport(peerAddress=PBX))
    proto.dataReceived(b"\x02garbage\r\n")
    assert factory.retries == 4  # noise is not proof of a working feed
    proto.dataReceived(b"\x0274R13024320140115\r\n")
    assert (factory.retries, factory.delay) == (0, factory.initialDelay)


def test_backoff_grows_while_the_pbx_hangs_up_at_once(logged_failures: list[Any]) -> None:
    reactor = MemoryReactorClock()
    floor = FloorState(reactor)
    factory = PBXClientFactory(floor, reactor, max_delay=30.0)
    delays: list[float] = []
    connector = reactor.connectTCP("127.0.0.1", 15373, factory)
    for _ in range(8):
        proto = receiver(factory)
        proto.makeConnection(StringTransport(peerAddress=PBX))
        proto.connectionLost(Failure(ConnectionDone()))
        factory.clientConnectionLost(connector, Failure(ConnectionDone()))
        delays.append(factory.delay)
    assert delays[:3] == sorted(delays[:3])
    assert delays[0] < delays[2]
    assert max(delays) <= 30.0 * (1 + 3 * factory.jitter)
    assert floor.feed.connections == 8
    factory.stopTrying()


def test_connection_refused_is_recorded_on_the_feed() -> None:
    reactor = MemoryReactorClock()
    floor = FloorState(reactor)
    factory = PBXClientFactory(floor, reactor)
    connector = reactor.connectTCP("127.0.0.1", 15373, factory)
    factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError()))
    assert floor.feed.connections == 0
    assert "refused" in (floor.feed.disconnect_reason or "").lower()
    assert factory.retries == 1
    factory.stopTrying()


# Idle flush (state-model §1) ------------------------------------------------------

LAST = b"\x0212A0815022001   1001   00"


def test_an_unterminated_last_record_is_applied_after_a_short_silence() -> None:
    clock = Clock()
    proto, transport, floor = connect(clock)
    proto.dataReceived(b"\x0274R13024320140115\r\n" + LAST)
    clock.advance(0.4)
    assert floor.agents == {}
    proto.dataReceived(b"")  # any read restarts the wait
    clock.advance(0.4)
    assert floor.agents == {}
    clock.advance(0.2)
    assert floor.legacy()["agents"] == {"1001": "in"}
    assert not transport.disconnecting


def test_bytes_after_a_flush_start_afresh() -> None:
    clock = Clock()
    proto, _, floor = connect(clock)
    proto.dataReceived(LAST[:-2])  # "\x0212A0815022001   1001   " and a pause
    clock.advance(1)
    proto.dataReceived(b"00\r\n\x0213C0815022001   1001   00\r\n")
    # The first part is applied as it stood (complete: the agent field is whole);
    # the rest has no STX and is noise, and the next record is read as usual.
    assert [type(r).__name__ for r in floor.results] == ["AgentEvent", "AgentEvent"]
    assert floor.feed.noise == 1
    assert floor.legacy()["agents"] == {"1001": "busy"}


@pytest.mark.parametrize("eol", [b"\r", b""])
def test_cr_only_and_unterminated_streams_are_exact(eol: bytes) -> None:
    clock = Clock()
    stream = b"".join(b"\x02" + body + eol for body in BODIES)
    proto, _, floor = connect(clock)
    proto.dataReceived(stream)
    clock.advance(0.6)
    reference, _ = feed([b"".join(b"\x02" + body + b"\r\n" for body in BODIES)])
    assert floor.results == reference.results
    # Only lastUpdate differs: the last record is applied after the silence.
    assert floor.legacy() == {**reference.legacy(), "lastUpdate": 0.6}


def test_a_closed_connection_applies_the_last_record() -> None:
    proto, _, floor = connect()
    proto.dataReceived(LAST + b"\r")
    proto.connectionLost(Failure(ConnectionDone()))
    assert floor.legacy()["agents"] == {"1001": "in"}
    assert floor.feed.connected is False


def test_a_half_discarded_overlong_line_is_not_flushed() -> None:
    clock = Clock()
    proto, _, floor = connect(clock)
    proto.dataReceived(b"\x02" + b"9" * 5000)
    clock.advance(1)
    assert floor.results == [] and floor.feed.noise == 1


# Only a complete record is flushed (state-model §1, v3) ------------------------------

#: A whole record of each layout (CR LF off), and how long it must be, counted
#: from its STX, before it is applied without a terminator.
COMPLETE_AT = [
    (b"\x0212A0815022001   1001   00", 24),
    (b"\x0239B1200002001   1001   00", 24),
    (b"\x0230E0900002001   1001   05", 24),
    (b"\x0200J1403205551234123456701", 24),
    (b"\x0217T0816442001   1001   01", 24),
    (b"\x0234C1001012050          00", 24),
    (b"\x0219G0816472001   1001   01860", 28),
    (b"\x0236S1015002002   1002   01123", 28),
    (b"\x0214K08151061000000100000000000", 23),
    (b"\x0238Q10151086001200210300000000", 23),
    (b"\x0274R13024320140115", 17),
]
COMPLETE_IDS = [chr(record[3]) + str(need) for record, need in COMPLETE_AT]


def nothing_applied(floor: RecordingFloor) -> bool:
    return not (floor.results or floor.agents or floor.extensions or floor.groups or floor.paths)


@pytest.mark.parametrize("record, need", COMPLETE_AT, ids=COMPLETE_IDS)
def test_the_end_of_a_connection_applies_a_complete_record_and_cuts_a_short_one(
    record: bytes, need: int
) -> None:
    for length in range(1, need):
        proto, _, floor = connect()
        proto.dataReceived(record[:length])
        proto.connectionLost(Failure(ConnectionLost()))
        assert nothing_applied(floor), record[:length]
        assert (floor.feed.records_cut, floor.feed.unparsable, floor.feed.noise) == (1, 0, 0)
        assert floor.feedView()["records_cut"] == 1
    proto, _, floor = connect()
    proto.dataReceived(record[:need])
    proto.connectionLost(Failure(ConnectionLost()))
    ((result),) = floor.results
    assert not isinstance(result, Malformed), result
    assert floor.feed.records_cut == 0


@pytest.mark.parametrize("record, need", COMPLETE_AT, ids=COMPLETE_IDS)
def test_a_pause_inside_a_short_record_does_not_split_it(record: bytes, need: int) -> None:
    reference, _ = feed([record + b"\r\n"])
    for at in range(1, need):
        clock = Clock()
        proto, _, floor = connect(clock)
        proto.dataReceived(record[:at])
        clock.advance(1)
        assert nothing_applied(floor), record[:at]
        assert floor.feed.noise == floor.feed.records_cut == 0
        proto.dataReceived(record[at:] + b"\r\n")
        assert floor.results == reference.results
        assert floor.legacy()["agents"] == reference.legacy()["agents"]


def test_a_reset_inside_the_agent_field_invents_no_agent() -> None:
    proto, _, floor = connect()
    proto.dataReceived(b"\x0201A0815022001   1633   00\r\n")
    proto.dataReceived(b"\x0202A0815032002   16")
    proto.connectionLost(Failure(ConnectionLost()))
    assert floor.legacy()["agents"] == {"1633": "in"}
    assert [r.seq for r in floor.results] == [1]
    assert (floor.feed.records_cut, floor.feed.unparsable) == (1, 0)


def test_a_pause_inside_the_agent_field_invents_no_agent() -> None:
    clock = Clock()
    proto, _, floor = connect(clock)
    proto.dataReceived(b"\x0201A0815022001   1633   00\r\n\x0202A0815032002   16")
    clock.advance(0.6)
    proto.dataReceived(b"34   00\r\n")
    assert floor.legacy()["agents"] == {"1633": "in", "1634": "in"}
    assert [r.seq for r in floor.results] == [1, 2]
    assert floor.feed.noise == floor.feed.unparsable == 0


def test_a_record_ended_by_the_next_stx_is_complete_whatever_its_length() -> None:
    # The length rule is for records that end by silence or by the end of the
    # connection; the next STX ends a record as a terminator does.
    proto, _, floor = connect()
    proto.dataReceived(b"\x0212A0815022001   1001\x0213C0815022001   1001   00")
    proto.connectionLost(Failure(ConnectionLost()))
    assert [r.code for r in floor.results] == ["A", "C"]
    assert floor.legacy()["agents"] == {"1001": "busy"}
    assert floor.feed.records_cut == 0


#: What state-model §1 asks of a record with no terminator yet, by function code.
NEEDED = {**dict.fromkeys(b"ABCDEFHIJLMNOPTU", 24), ord("G"): 28, ord("S"): 28}
NEEDED.update({ord("K"): 23, ord("Q"): 23, ord("R"): 17})


def still_short(sofar: bytes) -> bool:
    """Whether the record under way at the end of ``sofar`` is shorter than it must be."""
    start = sofar.rfind(b"\x02")
    if start < 0 or sofar.rfind(b"\n") > start:
        return False
    record = sofar[start:]
    return len(record) <= 3 or len(record) < NEEDED[record[3]]


@settings(max_examples=300, deadline=None)
@given(streams(), st.lists(st.integers(min_value=0), max_size=40))
def test_pauses_while_a_record_is_short_change_nothing(
    stream_and_count: tuple[bytes, int], points: list[int]
) -> None:
    stream, _ = stream_and_count
    whole, _ = feed([stream])
    clock = Clock()
    proto, _, paused = connect(clock)
    sofar = b""
    for chunk in cut(stream, points):
        proto.dataReceived(chunk)
        sofar += chunk
        if still_short(sofar):
            clock.advance(1)
    assert paused.results == whole.results
    legacy, reference = paused.legacy(), whole.legacy()
    assert all(legacy[key] == reference[key] for key in ("agents", "groups", "paths"))
    assert (paused.feed.noise, paused.feed.records_cut) == (whole.feed.noise, 0)


@pytest_twisted.ensureDeferred
async def test_idle_flush_over_a_real_loopback_socket() -> None:
    from twisted.internet import reactor

    class PBX(Protocol):
        def connectionMade(self) -> None:
            assert self.transport is not None
            # CR-only terminators, and the last record has none at all.
            self.transport.write(b"\x0274R13024320140115\r\x0212A0815022001   1001   00\r" + LAST)

    class PBXServer(ServerFactory):
        protocol = PBX

    port = reactor.listenTCP(0, PBXServer(), interface="127.0.0.1")
    address = port.getHost()
    assert isinstance(address, IPv4Address)
    floor = FloorState(reactor)
    factory = PBXClientFactory(floor, reactor)
    connector = reactor.connectTCP("127.0.0.1", address.port, factory)
    try:
        for _ in range(100):  # one second at most
            if (
                floor.legacy()["agents"] == {"1001": "in"}
                and floor.feed.records_this_connection == 3
            ):
                break
            await deferLater(reactor, 0.01)
        assert floor.feed.records_this_connection == 3
        assert floor.legacy()["agents"] == {"1001": "in"}
        assert floor.feed.unparsable == floor.feed.noise == 0
    finally:
        factory.stopTrying()
        connector.disconnect()
        await maybeDeferred(port.stopListening)


# Agent IDs (state-model §2) -------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.binary(max_size=200)
        | st.builds(
            lambda head, body: b"\x02" + head + body,
            st.sampled_from([b"12A081502", b"13G081502", b"14N081502", b"15C081502"]),
            st.binary(min_size=0, max_size=40),
        ),
        max_size=30,
    )
)
def test_random_bytes_never_create_an_agent_with_a_bad_id(chunks: list[bytes]) -> None:
    clock = Clock()
    proto, transport, floor = connect(clock)
    for chunk in chunks:
        proto.dataReceived(chunk)
    clock.advance(1)  # the idle flush too
    proto.connectionLost(Failure(ConnectionDone()))
    for agent_id in floor.agents:
        assert 1 <= len(agent_id) <= 7 and agent_id.isascii() and agent_id.isdigit(), agent_id
    for dn in floor.extensions:
        assert 1 <= len(dn) <= 7 and set(dn) <= set("0123456789*#"), dn


# Reconnection log -------------------------------------------------------------------


def test_the_retry_log_states_the_delay_actually_scheduled() -> None:
    reactor = MemoryReactorClock()
    floor = FloorState(reactor)
    factory = PBXClientFactory(floor, reactor, max_delay=30.0)
    connector = reactor.connectTCP("127.0.0.1", 15373, factory)
    try:
        for _ in range(6):
            with capture_log("mitelacd.feed.protocol") as log:
                factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError()))
            (call,) = reactor.getDelayedCalls()
            (line,) = [e for e in log.events if "retrying" in e.get("log_format", "")]
            assert line["delay"] == pytest.approx(call.getTime() - reactor.seconds())
            reactor.advance(call.getTime() - reactor.seconds())
    finally:
        factory.stopTrying()


def test_jitter_never_takes_a_redial_past_the_cap() -> None:
    reactor = MemoryReactorClock()
    floor = FloorState(reactor)
    factory = PBXClientFactory(floor, reactor, max_delay=30.0)
    connector = reactor.connectTCP("127.0.0.1", 15373, factory)
    saved = random.getstate()
    random.seed(15373)
    delays: list[float] = []
    try:
        for _ in range(300):
            factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError()))
            (call,) = reactor.getDelayedCalls()
            delays.append(call.getTime() - reactor.seconds())
            reactor.advance(delays[-1])
    finally:
        random.setstate(saved)
        factory.stopTrying()
    assert all(0 < delay <= 30.0 for delay in delays), max(delays)
    # Still jittered at the cap: no two waits alike, spread over seconds.
    at_cap = delays[6:]  # 1, e, e², ... reaches 30 s by the sixth attempt
    assert len(set(at_cap)) == len(at_cap)
    assert statistics.pstdev(at_cap) > 1.0
    assert 25.0 < statistics.mean(at_cap) < 30.0
    # Below the cap the backoff grows as before.
    assert delays[:4] == sorted(delays[:4]) and delays[3] > 10.0
