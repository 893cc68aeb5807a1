"""The caller's pages for collection links: photos and videos uploaded, or the location.

Same link and same rules as the video call (caller.py): consent first, one phone, a
plain page for a bad link. Uploads are read as a stream: a file is hashed while it is
written and never held whole in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from appliance import grid, i18n
from appliance.i18n import N_
from appliance.models import Call, Invite, UploadSession
from appliance.services.calls import invites
from appliance.services.calls.invites import LOCATION, UPLOAD, CallerLink, LinkProblem
from appliance.services.intake import locations, resumable, uploads
from appliance.services.intake.locations import LocationRefused
from appliance.services.intake.resumable import ChunkRefused, Declared
from appliance.services.intake.uploads import Limits, UploadRefused
from appliance.web import keys
from appliance.web.access import csrf_matches, grants, public, source_of, streams_body
from appliance.web.caller_links import (
    TITLES,
    caller_gettext,
    caller_link,
    device_hash_of,
    open_for,
    problem_page,
)

routes = web.RouteTableDef()
REFUSAL_STATUS = {
    "type": 415,
    "file_too_large": 413,
    "total_too_large": 413,
    "image_too_large": 413,
    "file_hash": 422,
}
CHUNK = 256 * 1024


def _collection_call(
    request: web.Request, call: Call | LinkProblem, link: CallerLink, want: str
) -> Call | web.Response:
    """The agreed call of an upload or location link opened on its own phone, else the
    page the caller should see instead."""
    if isinstance(call, LinkProblem):
        return problem_page(request, call, link)
    if link.kind != want or call.consent_at is None:
        raise web.HTTPSeeOther(f"/v/{request.match_info['token']}")
    return call


def _upload_page(
    request: web.Request,
    call: Call,
    *,
    received: list[str] | None = None,
    error: str = "",
    status: int = 200,
) -> web.Response:
    settings = request.app[keys.SETTINGS]
    with request.app[keys.DB].session() as session:
        invite = session.get(Invite, call.invite_id)
        assert invite is not None
        used = uploads.usage(session, invite)
    return aiohttp_jinja2.render_template(
        "caller/upload.html",
        request,
        {
            "token": request.match_info["token"],
            "page_title": TITLES[UPLOAD],
            "used": used,
            "limits": Limits.from_settings(settings),
            "human_size": uploads.human_size,
            "received": received or [],
            "error": error,
            "chunk_bytes": resumable.CHUNK_BYTES,
        },
        status=status,
    )


def _done_page(request: web.Request, kind: str, text: str) -> web.Response:
    return aiohttp_jinja2.render_template(
        "caller/done.html", request, {"page_title": TITLES[kind], "text": text}
    )


@routes.get("/v/{token}/upload", name="caller_upload")
@public
async def upload_page(request: web.Request) -> web.StreamResponse:
    result, link = open_for(request)
    call = _collection_call(request, result, link, UPLOAD)
    if not isinstance(call, Call):
        return call
    return _upload_page(request, call)


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


async def _small_field(part: BodyPartReader, limit: int = 256) -> str | None:
    data = b""
    while chunk := await part.read_chunk(limit):
        data += chunk
        if len(data) > limit:
            return None
    return data.decode("utf-8", "replace")


@routes.post("/v/{token}/upload", name="caller_upload_submit")
@public
@streams_body
async def upload_submit(request: web.Request) -> web.StreamResponse:
    """Files as a multipart stream, never read whole: the app-wide body limit does not
    apply here, the upload limits do, file by file, as the bytes arrive. An address
    whose files keep being refused is answered 429 before anything is read."""
    guards = request.app[keys.GUARDS]
    if guards.refusals.blocked(source_of(request)):
        raise web.HTTPTooManyRequests(
            text="Too many files from this address were refused: wait a minute and try again.",
            headers={"Retry-After": str(guards.refusals.retry_after(source_of(request)))},
        )
    result, link = open_for(request)
    call = _collection_call(request, result, link, UPLOAD)
    if not isinstance(call, Call):
        return call
    if request.content_type != "multipart/form-data":
        raise web.HTTPBadRequest(text="Send the files with the form on the page.")
    reader = await request.multipart()
    first = await reader.next()
    sent = await _small_field(first) if isinstance(first, BodyPartReader) else None
    named = first.name if isinstance(first, BodyPartReader) else None
    if named != keys.CSRF_FIELD or not csrf_matches(request, sent or ""):
        raise web.HTTPForbidden(
            text="The form had expired or was not sent from this site. "
            "Reload the page and try again."
        )
    settings = request.app[keys.SETTINGS]
    db = request.app[keys.DB]
    limits = Limits.from_settings(settings)
    token = request.match_info["token"]
    folder = uploads.uploads_dir(settings.data_dir, call.incident_id)
    source = source_of(request)
    kept: list[str] = []
    spent = False
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name != "files" or not part.filename:
            if isinstance(part, BodyPartReader):
                await part.release()
            continue
        with db.session() as session:
            invite = session.get(Invite, call.invite_id)
            assert invite is not None
            used = uploads.usage(session, invite)
        try:
            received = await uploads.receive(_chunks(part), folder, part.filename, limits, used)
        except UploadRefused as refusal:
            guards.refusals.hit(source)
            with db.session() as session:
                uploads.record_refusal(session, call, refusal, source)
            return _upload_page(
                request,
                call,
                received=kept,
                error=refusal.in_language(caller_gettext(request)),
                status=REFUSAL_STATUS.get(refusal.reason, 400),
            )
        outcome = _keep(request, token, received, limits)
        if isinstance(outcome, LinkProblem):
            return problem_page(request, outcome, link)
        if isinstance(outcome, UploadRefused):
            return _upload_page(
                request,
                call,
                received=kept,
                error=outcome.in_language(caller_gettext(request)),
                status=REFUSAL_STATUS.get(outcome.reason, 400),
            )
        kept.append(received.original_name)
        spent = outcome
        if spent:
            break
    if spent:
        return _done_page(
            request,
            UPLOAD,
            f"We received {len(kept)} file(s). This link has now taken all it can: "
            "if you have more to send, tell the officer.",
        )
    if not kept:
        return _upload_page(
            request,
            call,
            error=caller_gettext(request)(N_("Choose at least one photo or video.")),
            status=400,
        )
    return _upload_page(request, call, received=kept)


def _keep(
    request: web.Request, token: str, received: uploads.Received, limits: Limits
) -> bool | LinkProblem | UploadRefused:
    """Make a received file evidence; whether the link is now spent, or why not kept.

    The link is checked again (revoked or expired while the file arrived). The
    evidence file is removed if the row does not commit; the temporary file always.
    """
    final: Path | None = None
    source = source_of(request)
    try:
        with request.app[keys.DB].session() as session:
            link = invites.find_link(session, token)
            call = invites.open_link(session, link, device_hash_of(request), source)
            if isinstance(call, LinkProblem):
                return call
            invite = link.invite
            assert invite is not None
            try:
                item, spent = uploads.keep(
                    session, request.app[keys.KEYRING], call, invite, received, limits, source
                )
                final = Path(item.path)
            except UploadRefused as refusal:
                uploads.record_refusal(session, call, refusal, source)
                return refusal
        return spent
    except BaseException:
        if final is not None:
            final.unlink(missing_ok=True)
        raise
    finally:
        received.temp_path.unlink(missing_ok=True)


@routes.post("/v/{token}/finish", name="caller_upload_finish")
@public
async def upload_finish(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    with request.app[keys.DB].session() as session:
        link = caller_link(request, session)
        result = invites.open_link(session, link, device_hash_of(request), source_of(request))
        used = None
        if isinstance(result, Call) and link.kind == UPLOAD and result.consent_at is not None:
            invite = link.invite
            assert invite is not None
            used = uploads.finish(session, result, invite, source_of(request))
    if used is None:
        page = _collection_call(request, result, link, UPLOAD)
        if not isinstance(page, Call):
            return page
        raise web.HTTPSeeOther(f"/v/{token}")
    return _done_page(
        request,
        UPLOAD,
        i18n.translations(i18n.language(request.get(keys.LANGUAGE)).code).ngettext(
            "Thank you. We received %(files)d file. This link is now closed.",
            "Thank you. We received %(files)d files. This link is now closed.",
            used.files,
        )
        % {"files": used.files},
    )


# -- a file in chunks (services/intake/resumable.py) -------------------------------------


def _refused(refusal: ChunkRefused | UploadRefused, offset: int | None = None) -> web.Response:
    status = (
        refusal.status
        if isinstance(refusal, ChunkRefused)
        else REFUSAL_STATUS.get(refusal.reason, 400)
    )
    return web.json_response(
        {"error": str(refusal), "reason": refusal.reason, "offset": offset}, status=status
    )


def _resumable_link(request: web.Request) -> tuple[Call, Invite, str]:
    """The agreed upload link's call and invite, and the phone's device hash; a JSON
    refusal for anything else (the page shows its words)."""
    result, link = open_for(request)
    device = device_hash_of(request)
    if isinstance(result, LinkProblem) or link.kind != UPLOAD or link.invite is None:
        raise web.HTTPGone(
            text='{"error": "This link no longer takes files."}', content_type="application/json"
        )
    if result.consent_at is None or device is None:
        raise web.HTTPForbidden(
            text='{"error": "Open the link and agree first."}', content_type="application/json"
        )
    return result, link.invite, device


def _session_json(upload: UploadSession, **extra: object) -> web.Response:
    return web.json_response(
        {
            "id": upload.public_id,
            "offset": upload.confirmed_bytes,
            "size": upload.total_bytes,
            "chunkBytes": resumable.CHUNK_BYTES,
            **extra,
        }
    )


@routes.post("/v/{token}/uploads", name="caller_upload_begin")
@public
async def upload_begin(request: web.Request) -> web.StreamResponse:
    """Declare a file (JSON: name, type, size, sha256) and get its session: a new one,
    or the one this phone already has for the same file (the page was reloaded). An
    address whose files keep being refused is answered 429, as the form's upload is."""
    guards = request.app[keys.GUARDS]
    if guards.refusals.blocked(source_of(request)):
        return web.json_response(
            {"error": "Too many files from this address were refused: wait a minute."},
            status=429,
            headers={"Retry-After": str(guards.refusals.retry_after(source_of(request)))},
        )
    call, invite, device = _resumable_link(request)
    try:
        body = await request.json()
        declared = Declared(
            str(body["name"]), str(body.get("type", "")), int(body["size"]), str(body["sha256"])
        )
    except (ValueError, KeyError, TypeError):
        return _refused(ChunkRefused("The file was not declared properly.", "declaration", 400))
    settings = request.app[keys.SETTINGS]
    source = source_of(request)
    try:
        with request.app[keys.DB].session() as session:
            resumable.expire(session, settings.data_dir)
            upload = resumable.begin(
                session,
                request.app[keys.KEYRING],
                call,
                invite,
                device,
                declared,
                Limits.from_settings(settings),
                source,
            )
    except ChunkRefused as refusal:
        guards.refusals.hit(source)
        with request.app[keys.DB].session() as session:
            uploads.record_refusal(
                session, call, UploadRefused(str(refusal), refusal.reason), source
            )
        return _refused(refusal)
    return _session_json(upload)


@routes.get("/v/{token}/uploads/{upload}", name="caller_upload_status")
@public
async def upload_status(request: web.Request) -> web.StreamResponse:
    """How much of the file has arrived and is safe: where the page resumes."""
    _, invite, device = _resumable_link(request)
    try:
        with request.app[keys.DB].reader() as session:
            upload = resumable.find(session, invite, device, request.match_info["upload"])
    except ChunkRefused as refusal:
        return _refused(refusal)
    return _session_json(upload)


async def _chunk_body(request: web.Request, limit: int) -> bytes:
    """The chunk's bytes, never more than ``limit`` read (one byte more is a refusal)."""
    data = bytearray()
    try:
        while len(data) <= limit:
            piece = await request.content.read(limit + 1 - len(data))
            if not piece:
                break
            data += piece
    except (ConnectionError, HttpProcessingError) as exc:  # the phone lost its signal
        raise ChunkRefused("This part was cut short: send it again.", "chunk_short", 400) from exc
    if len(data) > limit:
        raise ChunkRefused("This part is longer than allowed.", "chunk_too_large", 413)
    if request.content_length is not None and len(data) != request.content_length:
        raise ChunkRefused("This part was cut short: send it again.", "chunk_short", 400)
    return bytes(data)


@routes.put("/v/{token}/uploads/{upload}", name="caller_upload_chunk")
@public
async def upload_chunk(request: web.Request) -> web.StreamResponse:
    """One chunk at ``Upload-Offset`` with its ``Upload-Chunk-SHA256``: checked, sealed,
    then counted. The last one puts the file together and makes it evidence."""
    call, invite, device = _resumable_link(request)
    settings = request.app[keys.SETTINGS]
    keyring = request.app[keys.KEYRING]
    db = request.app[keys.DB]
    public_id = request.match_info["upload"]
    confirmed: int | None = None
    try:
        offset = int(request.headers.get("Upload-Offset", ""))
        digest = request.headers.get("Upload-Chunk-SHA256", "").lower()
    except ValueError:
        offset, digest = -1, ""
    try:
        with db.reader() as session:
            upload = resumable.find(session, invite, device, public_id)
        confirmed = upload.confirmed_bytes
        if not resumable.SHA256_HEX.fullmatch(digest):
            raise ChunkRefused("This part came without its SHA-256.", "chunk_hash", 400)
        resumable.check_chunk(upload, offset, request.content_length)
        data = await _chunk_body(request, min(resumable.CHUNK_BYTES, upload.total_bytes - offset))
        await resumable.store_chunk(settings.data_dir, keyring, upload, data, digest)
        with db.session() as session:
            upload = resumable.confirm(
                session, public_id, offset, len(data), Limits.from_settings(settings).resume_window
            )
        confirmed = upload.confirmed_bytes
    except ChunkRefused as refusal:
        return _refused(refusal, confirmed)
    if upload.confirmed_bytes < upload.total_bytes:
        return _session_json(upload, done=False)
    return await _complete(request, call, invite, upload)


async def _complete(
    request: web.Request, call: Call, invite: Invite, upload: UploadSession
) -> web.StreamResponse:
    """The whole file through the one-shot upload's checks, then kept if it is the
    file declared; the session and its chunks go either way."""
    settings = request.app[keys.SETTINGS]
    db = request.app[keys.DB]
    limits = Limits.from_settings(settings)
    source = source_of(request)
    with db.reader() as session:
        used = uploads.usage(session, invite)
    try:
        received = await uploads.receive(
            resumable.plain_chunks(settings.data_dir, request.app[keys.KEYRING], upload),
            uploads.uploads_dir(settings.data_dir, call.incident_id),
            upload.original_name,
            limits,
            used,
        )
        try:
            resumable.check_whole(upload, received)
        except UploadRefused:
            received.temp_path.unlink(missing_ok=True)
            raise
        outcome = _keep(request, request.match_info["token"], received, limits)
        if isinstance(outcome, LinkProblem):
            raise UploadRefused("This link no longer takes files.", "link")
        if isinstance(outcome, UploadRefused):
            raise outcome
    except (UploadRefused, ChunkRefused) as refusal:
        request.app[keys.GUARDS].refusals.hit(source)
        with db.session() as session:
            if isinstance(refusal, UploadRefused) and refusal.reason != "link":
                uploads.record_refusal(session, call, refusal, source)
            resumable.close(session, settings.data_dir, upload.public_id)
        return _refused(refusal, 0)
    with db.session() as session:
        resumable.close(session, settings.data_dir, upload.public_id)
    return _session_json(upload, done=True, spent=outcome)


def _location_page(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(
        "caller/location.html",
        request,
        {"token": request.match_info["token"], "page_title": TITLES[LOCATION], "error": error},
        status=status,
    )


@routes.get("/v/{token}/location", name="caller_location")
@public
@grants("geolocation")
async def location_page(request: web.Request) -> web.StreamResponse:
    result, link = open_for(request)
    page = _collection_call(request, result, link, LOCATION)
    if not isinstance(page, Call):
        return page
    return _location_page(request)


@routes.post("/v/{token}/location", name="caller_location_submit")
@public
@grants("geolocation")
async def location_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    source = source_of(request)
    try:
        position = tuple(float(str(form.get(k, ""))) for k in ("latitude", "longitude", "accuracy"))
    except ValueError:
        position = None
    refusal: LocationRefused | None = None
    await asyncio.to_thread(grid.warm)
    with request.app[keys.DB].session() as session:
        link = caller_link(request, session)
        result = invites.open_link(session, link, device_hash_of(request), source)
        if isinstance(result, Call) and link.kind == LOCATION and result.consent_at is not None:
            invite = link.invite
            assert invite is not None
            try:
                if position is None:
                    raise LocationRefused(
                        N_(
                            "Your phone did not send a position. Allow location for this "
                            "page and try again."
                        ),
                        "missing",
                    )
                latitude, longitude, accuracy = position
                locations.share(
                    session,
                    result,
                    invite,
                    latitude,
                    longitude,
                    accuracy,
                    request.app[keys.SETTINGS].location_bounds,
                    source,
                )
            except LocationRefused as exc:
                locations.record_refusal(session, result, exc, source)
                refusal = exc
    page = _collection_call(request, result, link, LOCATION)
    if not isinstance(page, Call):
        return page
    _ = caller_gettext(request)
    if refusal is not None:
        return _location_page(request, _(str(refusal)), status=400)
    return _done_page(
        request,
        LOCATION,
        _("Thank you. Your location has reached the officer. You can close this page."),
    )
