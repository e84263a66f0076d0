"""What a failure means to the person who met it: one sentence naming the fix, and the raw detail.

Every error the CLI and the host plugins (Blender, Nuke) can meet goes through :func:`explain`:
plateforge's own errors, a gRPC status that escaped translation, and operating-system errors
(a folder that cannot be created, a disk that is full, a port already taken). The sentence says
what was wrong and what to check; the library's own wording (gRPC's "failed to connect to all
addresses", the server's metadata hints, errno text) stays out of it and goes to the log and to a
``details:`` line, where it helps whoever debugs.

Exit codes of the ``plateforge`` command (each :class:`Explanation` carries its own):

* 0: done.
* 1: ran, but part of the work failed (frames a ``process`` run could not write; a job that failed).
* 2: refused before doing anything: a usage, input, licence, token or server-side error to fix.
* 3: no server could be reached (none at the address, or it went away): rerun once one is up.
* 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass

import grpc

from plateforge import errors
from plateforge.errors import PlateforgeError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "Explanation",
    "explain",
    "is_expected",
    "no_server_sentence",
    "os_reason",
    "user_message",
]

log = logging.getLogger("plateforge")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130

#: Where a user sets the server and the token, in every place plateforge runs.
_SERVER_SETTINGS = "--server / PLATEFORGE_SERVER / the plugin's preferences"
_TOKEN_SETTINGS = "--token / PLATEFORGE_TOKEN / the plugin's preferences"


@dataclass(frozen=True)
class Explanation:
    """One failure, told to a person."""

    #: What was wrong and what to do about it, in the user's words.
    sentence: str
    #: The raw detail (library wording, errno text); "" when the sentence already says it all.
    details: str = ""
    #: The ``plateforge`` command's exit status for it (see the module doc).
    exit_code: int = EXIT_REFUSED

    def __str__(self) -> str:
        return self.sentence + (f"\ndetails: {self.details}" if self.details else "")


def no_server_sentence(address: str | None) -> str:
    """The sentence for an address where no plateforge server answers."""
    where = f"at {address}" if address else "configured"
    return f"no plateforge server {where}: start one with `plateforge serve`, or check {_SERVER_SETTINGS}"


def user_message(error: BaseException, *, address: str | None = None) -> str:
    """:func:`explain` as text (the sentence, then a ``details:`` line); the detail is logged too.
    Hosts put this in their reports, panels and status lines."""
    told = explain(error, address=address)
    if told.details:
        log.info("%s (details: %s)", told.sentence, told.details)
    return str(told)


def is_expected(error: BaseException) -> bool:
    """Whether ``error`` is one :func:`explain` tells in words (else it is a bug: keep its traceback)."""
    return isinstance(error, (PlateforgeError, OSError, grpc.RpcError))


def explain(error: BaseException, *, address: str | None = None) -> Explanation:
    """The sentence, raw detail and exit code for ``error``; ``address`` is the server, when known."""
    if isinstance(error, grpc.RpcError):
        return _explain_status(_code(error), _details(error), address)
    if isinstance(error, errors.ServerUnavailableError):
        if error.address is None and address is None:
            # Not a dead address (a local server that failed to start): its message says why.
            return Explanation(str(error), exit_code=EXIT_UNREACHABLE)
        return _unavailable(str(error), error.address or address)
    if isinstance(error, errors.AuthError):
        return _auth(str(error))
    if isinstance(error, errors.DeadlineError):
        return Explanation(
            "the server did not answer in the time allowed: raise --timeout, or check that the server is not "
            "busy with other work (plateforge jobs)",
            str(error),
        )
    if isinstance(error, errors.CancelledError):
        return Explanation("cancelled", str(error), EXIT_INTERRUPTED)
    if isinstance(error, PlateforgeError):
        if type(error) is PlateforgeError and str(error).startswith("internal server error"):
            return _internal(str(error))
        # Every other class is raised on purpose with a message that already says what was
        # expected and what was found (errors.py); it needs no translation.
        return Explanation(str(error))
    if isinstance(error, OSError):
        return _explain_os(error)
    return Explanation(f"unexpected {type(error).__name__}: {error}", exit_code=EXIT_FAILED)


def _code(error: grpc.RpcError) -> grpc.StatusCode:
    return error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN


def _details(error: grpc.RpcError) -> str:
    return (error.details() if isinstance(error, grpc.Call) else None) or str(error)


def _unavailable(details: str, address: str | None) -> Explanation:
    """UNAVAILABLE has several causes; gRPC's detail is the only place that tells them apart."""
    where = address or "the configured address"
    low = details.lower()
    if "handshake" in low or "ssl" in low or "certificate" in low:
        sentence = (
            f"no TLS connection to {where}: if that server does not serve TLS, drop --tls-ca / PLATEFORGE_TLS_CA; "
            "if it does, give the CA certificate that signed its certificate"
        )
    elif "socket closed" in low or "connection reset" in low:
        sentence = (
            f"the server at {where} closed the connection: check that it still runs (its log says why it "
            "stopped); a server started with --tls-cert also needs --tls-ca / PLATEFORGE_TLS_CA here"
        )
    elif "did not become ready" in low:
        sentence = (
            f"the server at {where} answers but is not ready (still starting, or stopping): wait and rerun, "
            "or check its log"
        )
    elif "no connection within" in low:
        sentence = (
            f"nothing answered at {where}: check {_SERVER_SETTINGS} (is this a plateforge server's port, and "
            "no firewall between?)"
        )
    else:
        sentence = no_server_sentence(address)
    return Explanation(sentence, details, EXIT_UNREACHABLE)


def _auth(details: str) -> Explanation:
    if details.startswith("missing token"):
        return Explanation(f"the server needs a token: give it with {_TOKEN_SETTINGS}", details)
    return Explanation(f"the server refused the token: check {_TOKEN_SETTINGS}", details)


def _internal(details: str) -> Explanation:
    return Explanation(
        "the server failed on this request (a bug in plateforge or a tool): its log says more; "
        "please report it with the details below",
        details,
        EXIT_FAILED,
    )


def _explain_status(code: grpc.StatusCode, details: str, address: str | None) -> Explanation:
    """A gRPC status that reached here untranslated (a host or script calling stubs directly)."""
    if code == grpc.StatusCode.UNAVAILABLE:
        return _unavailable(details, address)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return _auth(details)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return explain(errors.DeadlineError(details))
    if code == grpc.StatusCode.CANCELLED:
        return explain(errors.CancelledError(details))
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return Explanation(
            "the server does not offer this call: it runs another plateforge version; update the server "
            "and this client to the same release",
            details,
        )
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS):
        return _internal(details)
    # The remaining codes carry a server-side PlateforgeError message, written for people.
    return Explanation(details)


#: errno -> what to do, for the OS errors the CLI and the hosts meet on their own files and ports.
_OS_FIXES: dict[int, str] = {
    errno.ENOENT: "it does not exist: check the path",
    errno.EACCES: "permission denied: choose a path you may write, or fix its permissions",
    errno.EPERM: "operation not permitted: choose a path you may write, or fix its permissions",
    errno.EROFS: "the disk is read-only: choose a path on a writable disk",
    errno.ENOSPC: "the disk is full: free some space, or write elsewhere",
    errno.EDQUOT: "your disk quota is used up: free some space, or write elsewhere",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "it is a folder, where a file was expected: check the path",
    errno.EEXIST: "something already exists there: remove it or choose another path",
    errno.EADDRINUSE: "the address is in use (another server?): stop it, or choose a port that is free",
    errno.EADDRNOTAVAIL: "the address is not one of this machine's: bind 127.0.0.1 or one of its addresses",
}


def os_reason(error: OSError) -> str:
    """What an OS error means and what to do, without the file name (for callers that name it)."""
    return _OS_FIXES.get(error.errno or 0) or str(error.strerror or error)


def _explain_os(error: OSError) -> Explanation:
    fix = _OS_FIXES.get(error.errno or 0)
    target = error.filename if error.filename is not None else None
    raw = f"[Errno {error.errno}] {error.strerror}" if error.errno else str(error)
    if fix is None:
        subject = f"{target}: " if target is not None else ""
        return Explanation(f"{subject}{error.strerror or error}", raw if error.strerror else "")
    subject = f"'{target}': " if target is not None else ""
    return Explanation(f"{subject}{fix}", raw)
