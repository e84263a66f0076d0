"""The page renders what a job or a request says as text, never as markup: a dataset path or an
error holding HTML (anyone who may start a job chooses them) reaches the page escaped."""

from __future__ import annotations

from typing import Any

from plateforge_server.status.page import SCRIPT, render_page

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def snapshot() -> dict[str, Any]:
    job = {
        "id": 'abc"><b>', "state": "FAILED", "tool": "look", "dataset": HOSTILE, "step": 3, "steps": 10,
        "loss": 0.5, "val_psnr": None, "steps_per_second": None, "error": HOSTILE, "created_at": 1.0,
        "started_at": None, "finished_at": None, "images": {"loss.png": 123},
    }  # fmt: skip
    return {
        "server": {
            "version": "0.1.0",
            "device": "cpu",
            "tls": False,
            "started_at": 0.0,
            "uptime_seconds": 5.0,
            "health": {"": "SERVING"},
            "active_streams": 0,
            "training": True,
        },
        "models": [{"name": HOSTILE, "version": "1", "tool": "t", "hash": "ab" * 32, "licences": HOSTILE}],
        "queue_length": 0,
        "jobs": [job],
        "requests": [
            {
                "at": 1.0,
                "transport": "unary",
                "model": HOSTILE,
                "status": "OK",
                "seconds": 0.1,
                "bytes_in": 1,
                "bytes_out": 2,
            }
        ],
    }


def test_every_value_is_escaped() -> None:
    page = render_page(snapshot())
    assert "<script>alert" not in page and "<img src=x" not in page and '"><b>' not in page
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") == 5  # 5 places it is shown
    assert page.count("<script") == 1  # the page's own script, by src: the CSP forbids inline ones
    assert '<script src="status.js"></script>' in page


def test_the_script_writes_text_only() -> None:
    assert "innerHTML" not in SCRIPT and "outerHTML" not in SCRIPT and "insertAdjacentHTML" not in SCRIPT
    assert "textContent" in SCRIPT
