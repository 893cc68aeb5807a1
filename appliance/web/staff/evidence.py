"""Evidence for staff: an incident's files, played or viewed in the browser with
seeking (HTTP range requests, decrypted on the fly), marked, downloaded, exported.

Every view, playback, download, mark and refusal is audited (services/evidence/custody.py).
Every read is audited on the range as parsed, whatever the header's spelling and wherever
it starts: a download is a row each time; an inline read (a player's first request and
its seeks) goes through the app's ``ReadLedger``, a row at the first read and then at
most one per user and file per five minutes naming the ranges answered since.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import queue
import re
import threading
from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from appliance import dates
from appliance.models import EvidenceFile, FileKind, Incident, Role
from appliance.services.evidence import custody, export, signing
from appliance.services.evidence.custody import CustodyError, Mark
from appliance.web import keys
from appliance.web.access import current_roles, current_user, public, requires
from appliance.web.files import content_type, stream_file
from appliance.web.toolkit import actor_of

log = logging.getLogger("evr.evidence")

routes = web.RouteTableDef()
VIEWERS = (Role.HANDLER, Role.SUPERVISOR, Role.EVIDENCE_OFFICER)
MARK_ERRORS = {
    **custody.REFUSALS,
    "review_not_a_date": "The review date is not a date (YYYY-MM-DD).",
    "review_out_of_range": "The review date must lie between 2000-01-01 and 2099-12-31.",
}
"""What the evidence page may say after a refused mark, by the code in ``?error=``: a
fixed text, so a link that carries words of its own shows nothing."""


def _incident_or_refuse(request: web.Request, incident_id: int) -> Incident:
    """The incident if this user may see its evidence; a refusal is audited, then 403."""
    with request.app[keys.DB].session() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise web.HTTPNotFound(text="There is no incident with that reference.")
        allowed = custody.may_view(current_user(request), current_roles(request), incident)
        if not allowed:
            custody.refused(session, actor_of(request), "incident", incident_id)
    if not allowed:
        raise web.HTTPForbidden(text="The evidence of this incident is not yours to see.")
    return incident


def _file_or_refuse(request: web.Request) -> EvidenceFile:
    file_id = int(request.match_info["file_id"])
    with request.app[keys.DB].session() as session:
        file = session.get(EvidenceFile, file_id)
        if file is None:
            raise web.HTTPNotFound(text="There is no such evidence item.")
        incident = session.get(Incident, file.incident_id)
        assert incident is not None
        allowed = custody.may_view(current_user(request), current_roles(request), incident)
        if not allowed:
            custody.refused(session, actor_of(request), "evidence_file", file_id)
    if not allowed:
        raise web.HTTPForbidden(text="This evidence is not yours to see.")
    return file


@routes.get("/evidence", name="evidence_home")
@requires(Role.EVIDENCE_OFFICER)
async def evidence_home(request: web.Request) -> web.StreamResponse:
    """The evidence officer's start: incidents with evidence, reviews due and legal holds
    first, searched by CAD reference; each leads to its evidence page."""
    search = request.query.get("q", "").strip()[:64]
    with request.app[keys.DB].reader() as session:
        rows = custody.holdings(session, search)
    return aiohttp_jinja2.render_template(
        "evidence/home.html", request, {"rows": rows, "search": search}
    )


@routes.get(r"/incidents/{incident_id:\d+}/evidence", name="incident_evidence")
@requires(*VIEWERS)
async def evidence_page(request: web.Request) -> web.StreamResponse:
    incident = _incident_or_refuse(request, int(request.match_info["incident_id"]))
    with request.app[keys.DB].session() as session:
        files = custody.files_of(session, incident.id or 0, include_deleted=True)
    return aiohttp_jinja2.render_template(
        "evidence/incident.html",
        request,
        {
            "incident": incident,
            "files": files,
            "content_type": content_type,
            "may_mark": custody.may_mark(current_roles(request)),
            "error": MARK_ERRORS.get(request.query.get("error", ""), ""),
        },
    )


@routes.get(r"/evidence/{file_id:\d+}", name="evidence_file")
@requires(*VIEWERS)
async def evidence_file(request: web.Request) -> web.StreamResponse:
    """The file, decrypted: inline for the page's player (seekable), or a download."""
    file = _file_or_refuse(request)
    download = request.query.get("download") == "1"
    action = (
        "downloaded"
        if download
        else ("played" if file.kind == FileKind.RECORDING.value else "viewed")
    )

    actor, db, reads = actor_of(request), request.app[keys.DB], request.app[keys.READS]

    def audit_read(start: int, end: int, size: int) -> None:
        if download:
            with db.session() as session:
                custody.accessed(session, actor, action, file, start=start, end=end, size=size)
        elif not reads.counted(actor, file.id or 0, start, end):
            with db.session() as session:
                reads.read(session, actor, action, file, start=start, end=end, size=size)

    return await stream_file(request, file, inline=not download, before_send=audit_read)


@routes.post(r"/evidence/{file_id:\d+}/mark", name="evidence_mark")
@requires(Role.EVIDENCE_OFFICER)
async def mark(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    file_id = int(request.match_info["file_id"])
    review = str(form.get("review_at", "")).strip()
    error = ""
    try:
        review_at = datetime.fromisoformat(review).replace(tzinfo=UTC) if review else None
        if review_at is not None:
            dates.within("review_at", review_at)
    except dates.DateOutOfRange:
        review_at, error = None, "review_out_of_range"
    except ValueError:
        review_at, error = None, "review_not_a_date"
    with request.app[keys.DB].session() as session:
        file = session.get(EvidenceFile, file_id)
        if file is None:
            raise web.HTTPNotFound(text="There is no such evidence item.")
        incident_id = file.incident_id
        if not error:
            try:
                custody.mark(
                    session,
                    actor_of(request),
                    current_user(request),
                    file,
                    Mark(
                        evidential=form.get("evidential") == "yes",
                        exhibit_ref=str(form.get("exhibit_ref", "")),
                        review_at=review_at,
                        legal_hold=form.get("legal_hold") == "yes",
                    ),
                )
            except CustodyError as exc:
                error = exc.code
    if error:
        raise web.HTTPSeeOther(
            request.app.router["incident_evidence"]
            .url_for(incident_id=str(incident_id))
            .with_query(error=error)
        )
    raise web.HTTPSeeOther(f"/incidents/{incident_id}/evidence#file-{file_id}")


# A download that takes no chunk for this long is abandoned: its thread and file go.
EXPORT_STALL_SECONDS = 60.0
_POLL_SECONDS = 0.5


class _Pipe(io.RawIOBase):
    """A write-only stream from the zip-writing thread to the response, with
    back-pressure (a bounded queue), so a bundle never sits whole in memory or on disk.

    Either end can stop: ``abort`` (the client went, the download stalled, the server
    is stopping) makes the writer's next write raise, and neither end's thread ever
    waits on the other for longer than a poll, so shutdown always finishes."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self.aborted = threading.Event()

    def writable(self) -> bool:
        return True

    def _put(self, item: bytes | None) -> None:
        while not self.aborted.is_set():
            try:
                self.chunks.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue
        raise BrokenPipeError("the export download was abandoned")

    def write(self, data: Any) -> int:
        self._put(bytes(data))
        return len(data)

    def finish(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self._put(None)

    def next_chunk(self) -> bytes | None:
        """The next chunk; None at the end or once aborted."""
        while not self.aborted.is_set():
            try:
                return self.chunks.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
        return None

    def abort(self) -> None:
        self.aborted.set()


@routes.get(r"/incidents/{incident_id:\d+}/export", name="incident_export")
@requires(Role.EVIDENCE_OFFICER)
async def export_bundle(request: web.Request) -> web.StreamResponse:
    """The incident's signed export zip, streamed as it is made (audited once whole).

    What it holds is read in one short read-only transaction; the zip is written with
    none open, in a thread that stops when the client goes or stops reading."""
    incident = _incident_or_refuse(request, int(request.match_info["incident_id"]))
    settings, db = request.app[keys.SETTINGS], request.app[keys.DB]
    keyring, actor = request.app[keys.KEYRING], actor_of(request)
    pipe = _Pipe()
    failure: list[str] = []

    def make() -> None:
        try:
            with db.reader() as session:
                contents = export.gather(session, incident)
            out = io.BufferedWriter(pipe, buffer_size=256 * 1024)
            bundle = export.write_zip(contents, settings, keyring, actor, out)
            out.flush()
            with db.session() as session:
                export.record_export(session, actor, incident, bundle)
        except export.ExportError as exc:
            failure.append(str(exc))
        except BrokenPipeError:
            failure.append("abandoned")
        finally:
            pipe.finish()

    worker = asyncio.get_running_loop().run_in_executor(None, make)
    response = web.StreamResponse()
    response.content_type = "application/zip"
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", incident.cad_reference)
    response.headers["Content-Disposition"] = f'attachment; filename="evr-{safe}.zip"'
    response.headers["Cache-Control"] = "no-store"
    try:
        await response.prepare(request)
        while (chunk := await asyncio.to_thread(pipe.next_chunk)) is not None:
            async with asyncio.timeout(EXPORT_STALL_SECONDS):
                await response.write(chunk)
        await worker
    except TimeoutError:
        pipe.abort()
        log.warning("export download stalled: dropped", extra={"incident": incident.id})
        if request.transport is not None:
            request.transport.close()
        return response
    except BaseException:
        pipe.abort()
        log.warning("export abandoned", extra={"incident": incident.id})
        raise
    if failure:
        log.error("export failed", extra={"incident": incident.id, "error": failure[0]})
        raise ConnectionResetError(failure[0])
    await response.write_eof()
    return response


@routes.get("/evidence/public-key.pem", name="evidence_public_key")
@public
async def public_key(request: web.Request) -> web.StreamResponse:
    """The box's Ed25519 public key, for checking where an export bundle came from."""
    pem = signing.public_pem(request.app[keys.SETTINGS].effective_signing_key_file)
    return web.Response(body=pem, content_type="application/x-pem-file")
