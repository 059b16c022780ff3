"""The terminal WebSocket: binary frames between xterm.js and a shell on the workstation, with flow control."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any, cast
from urllib.parse import parse_qs

from asgiref.typing import WebSocketReceiveEvent
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import User

from rebench_site.errors import NotAllowed, ServiceError
from trials import recording, selectors, services
from trials.models import Attempt
from trials.recording import CastRecorder, has_started, prepare_spool, spool_dir, upload_closed_chunks
from trials.terminal_bridge import TerminalBridge, clamp_size
from workstation.backends import Backend, BackendError, SandboxRequest, Shell, ShellSpec

log = logging.getLogger(__name__)

# Close codes (4000–4999 are the application's): the browser doesn't reconnect after these.
CLOSE_ENDED = 4000
CLOSE_REFUSED = 4403
STATUS_CHECK_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 30.0


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    try:
        return int(query.get(name, [default])[0])
    except (TypeError, ValueError):
        return default


class TerminalConsumer(AsyncWebsocketConsumer):
    """One browser tab's view of terminal `n` of an attempt. The expert types; admins only watch.

    The consumer opens the shell, watches the attempt and ends the terminal; every binary frame and
    the shell's output go through its `bridge` (trials/terminal_bridge.py), made once access is granted.
    """

    bridge: TerminalBridge | None = None
    recorder: CastRecorder | None = None
    resumed: bool | None = None

    @property
    def shell(self) -> Shell | None:
        """The open shell, held by the bridge; None while there is none."""
        return self.bridge.shell if self.bridge is not None else None

    @property
    def live_bridge(self) -> TerminalBridge:
        """The bridge, made once access is granted: shells, recordings and the end all come after."""
        assert self.bridge is not None
        return self.bridge

    @property
    def closing(self) -> bool:
        """The terminal is ending, or the browser has gone (the bridge's pump notices a failed send)."""
        return self.bridge is None or self.bridge.closing

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Frames are the hot path: channels' dispatch hops to the one sync thread before every
        # message (close_old_connections), so a keystroke would queue behind any terminal's
        # database call. Frame handlers touch no database; everything else goes the usual way.
        if message["type"] == "websocket.receive":
            await self.websocket_receive(cast(WebSocketReceiveEvent, message))
            return
        await super().dispatch(message)

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        self.attempt_id = int(kwargs["attempt_id"])
        self.number = int(kwargs["number"])
        self.tasks: list[asyncio.Task[Any]] = []
        user = self.scope.get("user")
        where = f"attempt {self.attempt_id} terminal {self.number}"
        if user is None or not user.is_authenticated:
            log.warning("%s: refused an anonymous WebSocket", where)
            await self.close(code=CLOSE_REFUSED)
            return
        try:
            access = await database_sync_to_async(services.terminal_session_open)(
                attempt_id=self.attempt_id,
                number=self.number,
                user=cast(User, user),  # channels' AuthMiddleware: the signed-in User, in a lazy wrapper
            )
        except NotAllowed as exc:
            log.warning("%s: refused %s: %s", where, user, exc)
            await self.close(code=CLOSE_REFUSED)
            return
        except ServiceError as exc:
            # Said in the socket, so the page shows why (the attempt ended, no such tab).
            log.info("%s: refused %s: %s", where, user, exc.message)
            await self.accept()
            await self.send_json({"type": "close", "code": exc.field, "reason": exc.message})
            await self.close(code=CLOSE_ENDED)
            return
        self.user = user
        self.readonly = access.readonly
        self.backend: Backend = selectors.workstation_backend(access.workstation)
        self.sandbox: SandboxRequest = await database_sync_to_async(selectors.attempt_sandbox_request)(access.attempt)
        self.frozen: str | None = None
        self.recording_name = access.session.recording_name
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        cols, rows = clamp_size(_int_param(query, "cols", 80), _int_param(query, "rows", 24))
        self.bridge = TerminalBridge(
            send_bytes=self.send_frame,
            refuse=self.refuse_frame,
            readonly=self.readonly,
            high_water=settings.TERMINAL_HIGH_WATER,
            low_water=settings.TERMINAL_LOW_WATER,
            pace_frames=settings.TERMINAL_PACE_FRAMES,
            pace_interval_ms=settings.TERMINAL_PACE_INTERVAL_MS,
            max_input_bytes=settings.TERMINAL_MAX_INPUT_BYTES,
            cols=cols,
            rows=rows,
            log=log,
            attempt_id=self.attempt_id,
            number=self.number,
        )
        self.group = services.attempt_terminals_group(self.attempt_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(
            {
                "type": "hello",
                "attempt": self.attempt_id,
                "terminal": self.number,
                "readonly": self.readonly,
                "recorded": True,
                "high_water": settings.TERMINAL_HIGH_WATER,
            }
        )
        log.info("%s: %s attached%s", where, user, " read-only" if self.readonly else "")
        await self.say_frozen()
        self.tasks.append(asyncio.create_task(self.run_shell()))
        self.tasks.append(asyncio.create_task(self.watch()))

    # --- sending -------------------------------------------------------------------------------

    async def send_json(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(payload))

    async def send_frame(self, data: bytes) -> None:
        await self.send(bytes_data=data)

    async def refuse_frame(self, why: str) -> None:
        log.warning("attempt %s terminal %s: %s from %s", self.attempt_id, self.number, why, self.user)
        await self.send_json({"type": "error", "message": why})

    # --- the shell -----------------------------------------------------------------------------

    async def open_shell(self) -> Shell:
        token = ""
        if not self.readonly and not await self.backend.session_exists(self.spec()):
            # A new shell gets a fresh credential for its sandbox's relay (`task`); an existing one
            # keeps the one it was started with.
            token = await database_sync_to_async(self._issue_token)()
        control = await database_sync_to_async(selectors.attempt_sandbox_control)(self.attempt_id)
        return await self.backend.open(self.spec(token, control))

    def spec(self, token: str = "", control: dict[str, Any] | None = None) -> ShellSpec:
        return ShellSpec(
            attempt_id=self.attempt_id,
            number=self.number,
            sandbox=self.sandbox,
            cols=self.live_bridge.cols,
            rows=self.live_bridge.rows,
            readonly=self.readonly,
            token=token,
            spool_output="" if self.readonly else str(spool_dir(self.recording_name) / recording.OUTPUT),
            control=control or {},
        )

    def _issue_token(self) -> str:
        return services.attempt_token_issue(attempt=Attempt.objects.get(pk=self.attempt_id))

    async def _prepare_recording(self) -> None:
        """Before the first shell opens: the spool, and whether this is the recording's first connection."""
        if self.readonly or self.resumed is not None:
            return
        self.resumed = await asyncio.to_thread(has_started, self.recording_name)
        title = f"attempt {self.attempt_id} terminal {self.number}"
        width, height = self.live_bridge.cols, self.live_bridge.rows
        await asyncio.to_thread(prepare_spool, self.recording_name, width=width, height=height, title=title)

    def _start_recorder(self) -> None:
        # Output is recorded by the terminal's holder, attached or not; the consumer (through its bridge)
        # adds what only it sees: keystrokes, resizes and the connect/disconnect markers.
        if self.readonly or self.recorder is not None:
            return
        self.recorder = self.live_bridge.recorder = CastRecorder(self.recording_name)
        self.live_bridge.marker("reconnect" if self.resumed else "connect")

    async def run_shell(self) -> None:
        backoff = 1.0
        try:
            while not self.closing:
                try:
                    await self._prepare_recording()
                    shell = await self.open_shell()
                except Exception as exc:  # a workstation fault is retried, never the end of the terminal
                    if isinstance(exc, BackendError):
                        log.warning("attempt %s terminal %s: %s", self.attempt_id, self.number, exc)
                        message = str(exc)
                    else:
                        log.exception("attempt %s terminal %s: opening the shell failed", self.attempt_id, self.number)
                        message = f"The shell could not be opened ({type(exc).__name__})."
                    await self.send_json({"type": "error", "message": message, "retry_in": backoff})
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                    continue
                backoff = 1.0
                self.live_bridge.shell = shell
                self._start_recorder()
                await self.send_json({"type": "status", "state": "connected"})
                await self.live_bridge.pump(shell)
                self.live_bridge.shell = None
                await shell.close()
                if self.closing:
                    return
                if not await self.attempt_running():
                    await self.end("the attempt has ended")
                    return
                if self.readonly:
                    await self.send_json({"type": "close", "code": "no_shell", "reason": "The shell is not running."})
                    await self.close(code=CLOSE_ENDED)
                    return
                # The shell exited (`exit`, or its holder was ended): start a fresh one.
                await self.send_json({"type": "status", "state": "restarting", "message": "The shell exited."})
                await asyncio.sleep(0.5)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("attempt %s terminal %s: the shell bridge failed", self.attempt_id, self.number)
            await self.close(code=1011)

    async def watch(self) -> None:
        """Flush the recording every few seconds, upload closed chunks now and then, notice an ended attempt."""
        flush = settings.TERMINAL_RECORDING_FLUSH_SECONDS
        # Uploads start at a random point of the interval: tabs opened together (a server restart
        # reconnects them all at once) never upload in one burst that stalls everyone's echo.
        since_check, since_upload = 0.0, -random.uniform(0, settings.TERMINAL_RECORDING_UPLOAD_SECONDS)  # noqa: S311 - jitter, not a secret
        while not self.closing:
            await asyncio.sleep(flush)
            if self.recorder is not None:
                self.recorder.flush()
            since_check += flush
            since_upload += flush
            if self.recorder is not None and since_upload >= settings.TERMINAL_RECORDING_UPLOAD_SECONDS:
                since_upload = 0.0
                await self.save_recording()
            if since_check >= STATUS_CHECK_SECONDS:
                since_check = 0.0
                if not await self.attempt_running():
                    await self.end("the attempt has ended")
                    return
                await self.check_sandbox()

    async def check_sandbox(self) -> None:
        """While a tab is open, the workstation hears the server's word on pauses and the deadline every
        few seconds too (the Celery message may be late or lost), and the terminal says why it is frozen."""
        if self.readonly:
            await self.say_frozen()
            return
        try:
            control = await database_sync_to_async(selectors.attempt_sandbox_control)(self.attempt_id)
            await self.backend.sandbox_control(self.attempt_id, control)
        except Exception:  # the workstation unreachable for a moment: the next check tries again
            log.exception("attempt %s terminal %s: sending the sandbox control failed", self.attempt_id, self.number)
        await self.say_frozen()

    async def say_frozen(self) -> None:
        """Tell the page when the attempt's processes are frozen, and why; and when they run again."""
        reason = await database_sync_to_async(self._frozen_reason)()
        if reason == self.frozen:
            return
        self.frozen = reason
        message = selectors.FROZEN_MESSAGES.get(reason or "", "")
        await self.send_json(
            {"type": "frozen", "frozen": reason is not None, "reason": reason or "", "message": message}
        )

    def _frozen_reason(self) -> str | None:
        attempt = Attempt.objects.prefetch_related("pauses").get(pk=self.attempt_id)
        return selectors.attempt_frozen_reason(attempt)

    async def save_recording(self) -> None:
        """Pull the workstation's output spool (SSH) and upload closed chunks to storage; never fatal."""
        try:
            await self.backend.pull_recording(
                self.attempt_id, self.number, spool_dir(self.recording_name) / recording.OUTPUT
            )
            await asyncio.to_thread(upload_closed_chunks, self.recording_name)
        except Exception:  # storage or the workstation down: the spool keeps everything until next time
            log.exception("attempt %s terminal %s: saving the recording failed", self.attempt_id, self.number)

    @database_sync_to_async
    def attempt_running(self) -> bool:
        """Running, and not past its deadline: an open terminal ends the attempt there itself when nothing else has."""
        services.attempt_end_if_overdue(attempt_id=self.attempt_id)
        return Attempt.objects.filter(pk=self.attempt_id, status=Attempt.Status.RUNNING).exists()

    @database_sync_to_async
    def _end_reason(self) -> str:
        attempt = Attempt.objects.filter(pk=self.attempt_id).first()
        return attempt.get_end_reason_display() if attempt and attempt.end_reason else "the attempt has ended"

    async def end(self, reason: str) -> None:
        """The attempt is over: say why, end the terminals (the workspace stays), close."""
        if self.closing:
            return
        if reason == "the attempt has ended":
            reason = await self._end_reason()
        self.live_bridge.closing = True
        await self.send_json({"type": "close", "code": "attempt_ended", "reason": f"The attempt has ended: {reason}."})
        if self.shell is not None:
            await self.shell.close()
        try:
            await self.backend.end_attempt(self.attempt_id)
        except BackendError as exc:
            log.warning("attempt %s: %s", self.attempt_id, exc)
        await self.close(code=CLOSE_ENDED)

    # --- receiving -----------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if bytes_data is None:
            await self.refuse_frame("text frames are not part of the protocol; send binary frames")
            return
        if self.bridge is None:
            return  # refused in connect(), which closed the socket: nothing here reads frames
        await self.bridge.receive(bytes_data)

    # --- control events from the channel layer ------------------------------------------------

    async def attempt_ended(self, event: dict[str, Any]) -> None:
        await self.end(str(event.get("reason") or "the attempt has ended"))

    async def attempt_frozen(self, event: dict[str, Any]) -> None:
        """A pause began or ended (or the deadline passed): say so now, not at the next check."""
        await self.say_frozen()

    async def admin_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "notice", "message": str(event.get("message", ""))[:1000]})

    async def disconnect(self, code: int) -> None:
        if self.bridge is not None:
            self.bridge.stop()
        for task in getattr(self, "tasks", []):
            task.cancel()
        if self.bridge is not None and self.bridge.shell is not None:
            await self.bridge.shell.close()
            self.bridge.shell = None
        if self.recorder is not None:
            self.live_bridge.marker("disconnect")
            self.recorder.close()
            await self.save_recording()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
