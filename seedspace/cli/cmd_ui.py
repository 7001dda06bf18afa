"""``seedspace ui``: the browser explorer (Gradio) on a model, bound to 127.0.0.1 unless --host says otherwise."""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path

from ..checks import check_int
from ..ui.tasks import Explorer
from . import common

COMMAND = "ui"
LOCAL_HOST = "127.0.0.1"


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="a seed explorer in the browser: interpolate, centroid, travel, norms; results as run folders",
        description="Serve a Gradio page that explores the seed space of a model: interpolation between seeds or "
                    "uploaded images, centroids, seed travel and norm diagnostics. Every result is a run folder "
                    "like the command line's (under --runs-dir) and can be downloaded as a .zip. Needs the "
                    "optional extra: pip install 'seedspace[ui]'.")
    common.add_model_choice(p)
    common.add_size_options(p)
    p.add_argument("--host", default=LOCAL_HOST,
                   help="address to bind; anything but a loopback address lets other machines use the page")
    p.add_argument("--port", type=int, default=7860, help="port (0: any free port)")
    p.add_argument("--runs-dir", default="outputs", help="folder for the run folders and uploads")
    p.add_argument("--batch-size", type=int, default=16, help="images per model call")
    common.add_prior_option(p)
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str) -> None:
    """CLIError for a host the server cannot bind: an IPv6 literal (Gradio's start-up check builds its URL without
    brackets and fails after binding) or an empty name."""
    if not host.strip():
        raise common.CLIError("--host must name an address, e.g. 127.0.0.1")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    if address.version == 6:
        raise common.CLIError(f"--host {host}: the explorer's server (Gradio) cannot serve on an IPv6 address; use "
                              f"{LOCAL_HOST}, localhost or 0.0.0.0")


def check_bindable(host: str, port: int) -> None:
    """CLIError at once (before the model loads) when ``host:port`` cannot be bound: a port in use, or a host name
    that does not resolve to an address of this machine. The socket is closed again for the server to take."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
    except OSError as exc:
        reason = "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise common.CLIError(f"cannot serve on {host}:{port} ({reason}); choose another --port (0: any free port) "
                              "or --host") from None


def run(args) -> int:
    check_host(args.host)
    check_int(args.port, "--port", 0, 65535)
    check_bindable(args.host, args.port)
    common.check_batch_size(args.batch_size, "--batch-size")
    try:
        from ..ui.app import serve  # lazy: gradio is an optional dependency (the `ui` extra)
    except ImportError as exc:
        raise common.CLIError(f"seedspace ui needs gradio ({exc}); install it with: pip install 'seedspace[ui]'") \
            from None

    ref = common.model_ref(args.model)
    model = common.load_for(args, ref)
    explorer = Explorer(model, ref, Path(args.runs_dir), args.batch_size, args.prior)
    if not is_loopback(args.host):
        common.log.warning(f"serving on {args.host}, not {LOCAL_HOST}: anyone who can reach this machine "
                           "can use the page and download its run folders")
    serve(explorer, args.host, args.port or None)
    return 0
