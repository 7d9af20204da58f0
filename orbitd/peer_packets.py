"""Which SCTP packets a `Peer`'s connections send (feature `large-packets`).

aiortc sends a data channel's bytes in packets of 1172 bytes of payload and pays, per
packet, a DTLS record, a checksum, a datagram and a SACK back: on loopback that is the
whole cost of a file (13-27 MB/s; `bench files`). Two daemons that both announce
`large-packets` send packets of up to 16 KiB where the path carries them
(`orbitd.adapters.sctp_packets`; 180 MB/s for the bare pair):

- every connection to another daemon accepts large records from the moment its DTLS
  handshake is done (`connected`: before aiortc reads the first packet after it), the
  feature agreed or not, so that a peer that announced it may send them at once, and
  gets a 4 MiB UDP receive buffer (a dozen 16 KiB datagrams fill the default one);
- a connection sends them once the feature is agreed and while its path is loopback
  (a datagram of 16 KiB crosses loopback whole; on a LAN it would be cut into IP
  fragments, and one lost fragment loses the packet: the LAN keeps aiortc's size).
  A replaced connection (a reconnect) starts small and is switched again when it is up.
"""

from __future__ import annotations

import logging

from aiortc import RTCPeerConnection

from .adapters.sctp_packets import (
    LOOPBACK_USER_DATA,
    accept_large_packets,
    accepts_large_packets,
    enlarge_receive_buffer,
    send_large_packets,
    sends_large_packets,
)

FEATURE = "large-packets"
LARGE_PATHS = frozenset({"loopback"})

log = logging.getLogger("orbitd.peer")


class PacketSizes:
    """The large-packet decision for each connection of one `Peer`."""

    def __init__(self) -> None:
        self.agreed = False

    def connected(self, pc: RTCPeerConnection, path: str | None) -> None:
        """`pc` (the current connection) is up: accept large packets, and send them if
        the feature is agreed and the path carries them."""
        if accept_large_packets(pc):
            enlarge_receive_buffer(pc)
        self._apply(pc, path)

    def agree(self, pc: RTCPeerConnection, path: str | None) -> None:
        """Both daemons announced the feature (read in the confirms)."""
        self.agreed = True
        self._apply(pc, path)

    def _apply(self, pc: RTCPeerConnection, path: str | None) -> None:
        if not self.agreed or path not in LARGE_PATHS or sends_large_packets(pc):
            return
        # Our own DTLS transport must write whole large records too (the proxy reads
        # them out of OpenSSL): only a connection that accepts them sends them.
        if accepts_large_packets(pc) and send_large_packets(pc, LOOPBACK_USER_DATA):
            log.info("large packets", extra={"fields": {"path": path, "bytes": LOOPBACK_USER_DATA}})
