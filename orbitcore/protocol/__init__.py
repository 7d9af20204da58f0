"""Every frame that crosses a process boundary, defined once.

Channels (each a module with its frames and a `Channel` registry):
- `relay`: the rendezvous WebSocket between a daemon and the rendezvous (and the LAN link,
  which carries the same handshake frames straight between two daemons);
- `signal`: what travels sealed inside `relay.Sealed` (confirm with version and features,
  offer, answer);
- `peer`: the data channel between two daemons (chat, acks, delete, end, call control,
  renegotiation, file transfer control);
- `files`: the daemons' second data channel, a file's sealed chunks (binary) and the
  receiver's flow control and resume;
- `lan`: the LAN listener's HTTP bodies (hellos, invites);
- `control`: `orbitd open` asking the running daemon for a login link (Unix socket).

`frames` holds the machinery (typed frames, the bounded reader, `ProtocolError`,
`dispatch`), `version` the protocol version and feature negotiation.
docs/protocol.md lists every frame; tests/test_protocol_docs.py keeps the two equal.
"""
