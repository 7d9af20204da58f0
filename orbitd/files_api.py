"""The file transfer part of the local API (feature `files`), described in docs/ui-api.md.

The browser offers a file (`POST /api/files`), then uploads it in slices of at most
1 MiB (`PUT /api/files/{id}/data?offset=N`), each answered once the daemon's bounded
window took it; the receiver's browser accepts and downloads it (`GET
/api/files/{id}/data`), a stream as fast as the bytes arrive and the download takes
them. Behind the same security layer as the rest of the API.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from orbitcore.errors import Refusal, json_object

from .chat import ChatError
from .transfer import UPLOAD_SLICE_MAX, FileState, TransferRefusal
from .transfer_receiver import Incoming
from .transfer_sender import Outgoing

if TYPE_CHECKING:
    from .files import FileTransfers
    from .manager import SessionManager

routes = web.RouteTableDef()
DOWNLOAD_CHUNKS = 16  # chunks written per turn of a download (1 MiB)


def _manager(request: web.Request) -> SessionManager:
    from .api import MANAGER

    return request.app[MANAGER]


def _files(request: web.Request) -> FileTransfers:
    session = _manager(request).current()
    if session.ended is not None:
        raise ChatError(409, "session_ended", "The session has ended.")
    if session.conversation is None:
        raise ChatError(409, "not_connected", "The chat is not connected yet.")
    if session.files is None:
        raise ChatError(
            409,
            "feature_unavailable",
            "The other person's ChatOrbit cannot receive files: ask them to update it.",
        )
    return session.files


def _transfer(request: web.Request) -> tuple[FileTransfers, Any]:
    files = _manager(request).current().files
    if files is None:
        raise TransferRefusal(404, "file_not_found", "There is no such file.")
    return files, files.get(request.match_info["file_id"])


def _refused(refusal: Refusal) -> web.Response:
    extra = refusal.extra if isinstance(refusal, TransferRefusal) else {}
    body = {"error": refusal.code, "reason": refusal.reason} | extra
    return web.json_response(body, status=refusal.status)


@routes.post("/api/files")
async def offer(request: web.Request) -> web.Response:
    body = await json_object(request)
    try:
        file = _files(request).offer(body.get("name"), body.get("size"), body.get("type"))
    except TransferRefusal as refusal:
        return _refused(refusal)
    return web.json_response({"file": file}, status=201)


@routes.post("/api/files/{file_id}/accept")
async def accept(request: web.Request) -> web.Response:
    files, _ = _transfer(request)
    return web.json_response({"file": files.answer(request.match_info["file_id"], True)})


@routes.post("/api/files/{file_id}/decline")
async def decline(request: web.Request) -> web.Response:
    files, _ = _transfer(request)
    return web.json_response({"file": files.answer(request.match_info["file_id"], False)})


@routes.post("/api/files/{file_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    files, _ = _transfer(request)
    return web.json_response({"file": files.cancel(request.match_info["file_id"])})


def _offset(request: web.Request) -> int:
    raw = request.query.get("offset", "")
    if not raw.isdigit() or len(raw) > 16:
        raise TransferRefusal(422, "invalid_offset", "`offset` is a whole number of bytes.")
    return int(raw)


async def _read_slice(request: web.Request) -> bytes:
    """The request's body, refused beyond `UPLOAD_SLICE_MAX` (aiohttp's own cap for the
    API's JSON bodies is smaller: read here, bounded)."""
    length = request.content_length
    if length is not None and length > UPLOAD_SLICE_MAX:
        raise TransferRefusal(
            413, "chunk_too_large", f"Send at most {UPLOAD_SLICE_MAX} bytes per request."
        )
    data = bytearray()
    async for piece in request.content.iter_chunked(64 * 1024):
        data += piece
        if len(data) > UPLOAD_SLICE_MAX:
            raise TransferRefusal(
                413, "chunk_too_large", f"Send at most {UPLOAD_SLICE_MAX} bytes per request."
            )
    return bytes(data)


@routes.put("/api/files/{file_id}/data")
async def upload(request: web.Request) -> web.Response:
    try:
        files, transfer = _transfer(request)
        if not isinstance(transfer, Outgoing):
            raise TransferRefusal(409, "file_not_sending", "This file is not one you send.")
        offset = _offset(request)
        transfer.check_slice(offset, request.content_length or 0)
        data = await _read_slice(request)
        next_offset = await files.upload(transfer, offset, data)
    except TransferRefusal as refusal:
        return _refused(refusal)
    return web.json_response({"next_offset": next_offset})


@routes.get("/api/files/{file_id}/data")
async def download(request: web.Request) -> web.StreamResponse:
    try:
        files, transfer = _transfer(request)
        if not isinstance(transfer, Incoming):
            raise TransferRefusal(409, "file_not_accepted", "This file is not one you receive.")
        transfer.attach()
    except TransferRefusal as refusal:
        return _refused(refusal)
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(transfer.name)}",
                "Cache-Control": "no-store",
            }
        )
        response.content_length = transfer.size
        await response.prepare(request)
        written = 0
        while written < transfer.size or transfer.state is FileState.TRANSFERRING:
            await files.wait(transfer, transfer.readable)
            chunks = files.taken(transfer, DOWNLOAD_CHUNKS)
            if not chunks and transfer.final:
                break
            for chunk in chunks:
                try:
                    await response.write(chunk)
                except ConnectionError:  # the browser went away: the file is lost
                    return response
                written += len(chunk)
        if written < transfer.size:  # failed or cancelled: the download must fail too
            with contextlib.suppress(Exception):
                request.transport.close()  # type: ignore[union-attr]
            return response
        await response.write_eof()
        return response
    finally:
        files.detached(transfer)
