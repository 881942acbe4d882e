"""The provider sandbox over real HTTP: the providers' shapes, deterministic results
(text with honest word counts, a real PNG, an MP4 placeholder with its duration),
jobs that complete on their Nth poll, and every way of injecting a fault."""

from __future__ import annotations

import email.utils
from typing import Any

import httpx

from sandbox import content
from tests.generation.conftest import SandboxServer
from tests.generation.media import mp4_duration_ms, read_png


def chat_body(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "sandbox-text", "messages": [{"role": "user", "content": prompt}], **extra}


async def test_chat_is_deterministic_and_counts_its_words(sandbox: SandboxServer) -> None:
    body = {
        "model": "sandbox-text",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Name three rivers of Europe"},
        ],
    }
    first = (await sandbox.http.post("/v1/chat/completions", json=body)).json()
    second = (await sandbox.http.post("/v1/chat/completions", json=body)).json()
    text = first["choices"][0]["message"]["content"]
    assert text == second["choices"][0]["message"]["content"]
    assert "Name three rivers of Europe" in text
    assert first["object"] == "chat.completion" and first["model"] == "sandbox-text"
    assert first["choices"][0]["finish_reason"] == "stop"
    assert first["usage"] == {
        "prompt_tokens": 2 + 5,  # every message's words
        "completion_tokens": len(text.split()),
        "total_tokens": 7 + len(text.split()),
    }
    other = (await sandbox.http.post("/v1/chat/completions", json=chat_body("Other"))).json()
    assert other["choices"][0]["message"]["content"] != text


async def test_chat_stops_at_max_tokens(sandbox: SandboxServer) -> None:
    reply = await sandbox.http.post(
        "/v1/chat/completions", json=chat_body("Tell me everything", max_tokens=3)
    )
    data = reply.json()
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 3
    assert len(data["choices"][0]["message"]["content"].split()) == 3


async def test_the_words_marker_makes_a_reply_that_long(sandbox: SandboxServer) -> None:
    reply = await sandbox.http.post(
        "/v1/chat/completions", json=chat_body("Tell me a story [[fault:words=300]]")
    )
    data = reply.json()
    assert data["choices"][0]["finish_reason"] == "stop"
    assert len(data["choices"][0]["message"]["content"].split()) == 300
    assert data["usage"]["completion_tokens"] == 300
    capped = await sandbox.http.post(
        "/v1/chat/completions", json=chat_body("Again [[fault:words=300]]", max_tokens=10)
    )
    assert capped.json()["usage"]["completion_tokens"] == 10


async def test_chat_refuses_what_openai_refuses(sandbox: SandboxServer) -> None:
    reply = await sandbox.http.post("/v1/chat/completions", json={"messages": []})
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"


async def test_leonardo_generation_completes_on_the_second_poll_with_a_real_png(
    sandbox: SandboxServer,
) -> None:
    created = await sandbox.http.post(
        "/api/rest/v1/generations",
        json={"prompt": "a red fox", "modelId": "sandbox-image", "width": 64, "height": 48},
    )
    generation_id = created.json()["sdGenerationJob"]["generationId"]
    first = (await sandbox.http.get(f"/api/rest/v1/generations/{generation_id}")).json()
    assert first["generations_by_pk"]["status"] == "PENDING"
    assert first["generations_by_pk"]["generated_images"] == []
    second = (await sandbox.http.get(f"/api/rest/v1/generations/{generation_id}")).json()
    generation = second["generations_by_pk"]
    assert generation["status"] == "COMPLETE"
    [image] = generation["generated_images"]
    assert image["url"].startswith(sandbox.url + "/files/images/")

    fetched = await sandbox.http.get(image["url"])
    assert fetched.headers["content-type"] == "image/png"
    png = read_png(fetched.content)
    assert (png.width, png.height) == (64, 48)
    assert len(set(png.pixels)) > 16, "a gradient, not a flat colour"
    again = await sandbox.http.get(image["url"])
    assert again.content == fetched.content, "the same prompt renders the same image"


async def test_the_image_depends_on_the_prompt(sandbox: SandboxServer) -> None:
    urls = []
    for prompt in ("a red fox", "a blue whale"):
        created = await sandbox.http.post(
            "/api/rest/v1/generations", json={"prompt": prompt, "width": 32, "height": 32}
        )
        generation_id = created.json()["sdGenerationJob"]["generationId"]
        for _ in range(2):
            polled = await sandbox.http.get(f"/api/rest/v1/generations/{generation_id}")
        urls.append(polled.json()["generations_by_pk"]["generated_images"][0]["url"])
    images = [(await sandbox.http.get(url)).content for url in urls]
    assert images[0] != images[1]
    assert all(read_png(image).width == 32 for image in images)


async def test_leonardo_refuses_sizes_it_cannot_render(sandbox: SandboxServer) -> None:
    reply = await sandbox.http.post(
        "/api/rest/v1/generations", json={"prompt": "x", "width": 100, "height": 64}
    )
    assert reply.status_code == 400
    assert "multiples of 8" in reply.json()["error"]


async def test_heygen_video_has_a_duration_and_an_mp4_placeholder(
    sandbox: SandboxServer,
) -> None:
    avatars = (await sandbox.http.get("/v2/avatars")).json()["data"]["avatars"]
    voices = (await sandbox.http.get("/v2/voices")).json()["data"]["voices"]
    script = "Hello and welcome to the klik sandbox, where every video is a placeholder"
    created = await sandbox.http.post(
        "/v2/video/generate",
        json={
            "video_inputs": [
                {
                    "character": {"type": "avatar", "avatar_id": avatars[0]["avatar_id"]},
                    "voice": {
                        "type": "text",
                        "input_text": script,
                        "voice_id": voices[0]["voice_id"],
                    },
                }
            ],
            "dimension": {"width": 1280, "height": 720},
        },
    )
    assert created.json()["error"] is None
    video_id = created.json()["data"]["video_id"]
    first = await sandbox.http.get("/v1/video_status.get", params={"video_id": video_id})
    assert first.json()["data"]["status"] == "pending"
    assert first.json()["data"]["video_url"] is None
    done = (await sandbox.http.get("/v1/video_status.get", params={"video_id": video_id})).json()
    assert (done["code"], done["message"]) == (100, "Success")
    video = done["data"]
    assert video["status"] == "completed"
    assert len(script.split()) == 13
    assert video["duration"] == content.video_seconds(script) == 13 / 2.5

    fetched = await sandbox.http.get(video["video_url"])
    assert fetched.headers["content-type"] == "video/mp4"
    assert mp4_duration_ms(fetched.content) == 5200
    thumbnail = await sandbox.http.get(video["thumbnail_url"])
    assert (read_png(thumbnail.content).width, read_png(thumbnail.content).height) == (320, 180)


async def test_heygen_refuses_unknown_avatars(sandbox: SandboxServer) -> None:
    reply = await sandbox.http.post(
        "/v2/video/generate",
        json={
            "video_inputs": [
                {
                    "character": {"type": "avatar", "avatar_id": "nobody"},
                    "voice": {"type": "text", "input_text": "hi", "voice_id": "x"},
                }
            ]
        },
    )
    assert reply.status_code == 400
    assert reply.json()["data"] is None
    assert "nobody" in reply.json()["error"]["message"]


async def test_header_fault_429_twice_then_success(sandbox: SandboxServer) -> None:
    headers = {"X-Sandbox-Fault": "429x2,retry-after=3"}
    statuses = []
    for _ in range(3):
        reply = await sandbox.http.post(
            "/v1/chat/completions", json=chat_body("hello"), headers=headers
        )
        statuses.append(reply.status_code)
        if reply.status_code == 429:
            assert reply.headers["retry-after"] == "3"
    assert statuses == [429, 429, 200]
    # The count is per request: a different body starts its own.
    other = await sandbox.http.post("/v1/chat/completions", json=chat_body("bye"), headers=headers)
    assert other.status_code == 429
    log = await sandbox.requests("/v1/chat/completions")
    assert [(r["status"], r["fault"]) for r in log] == [
        (429, "429"),
        (429, "429"),
        (200, ""),
        (429, "429"),
    ]


async def test_retry_after_can_be_an_http_date(sandbox: SandboxServer) -> None:
    reply = await sandbox.http.post(
        "/v1/chat/completions",
        json=chat_body("hi"),
        headers={"X-Sandbox-Fault": "503,retry-after=@30"},
    )
    assert reply.status_code == 503
    when = email.utils.parsedate_to_datetime(reply.headers["retry-after"])
    date = email.utils.parsedate_to_datetime(reply.headers["date"])
    assert 28 <= (when - date).total_seconds() <= 31


async def test_prompt_marker_faults(sandbox: SandboxServer) -> None:
    body = chat_body("Summarise this [[fault:502x1]] please")
    first = await sandbox.http.post("/v1/chat/completions", json=body)
    second = await sandbox.http.post("/v1/chat/completions", json=body)
    assert (first.status_code, second.status_code) == (502, 200)
    # The reply quotes the prompt without the marker.
    assert "[[fault" not in second.json()["choices"][0]["message"]["content"]

    broken = await sandbox.http.post("/v1/chat/completions", json=chat_body("[[fault:malformed]]"))
    assert broken.status_code == 200
    assert broken.headers["content-type"] == "application/json"
    try:
        broken.json()
    except ValueError:
        pass
    else:
        raise AssertionError("a malformed body must not parse as JSON")


async def test_global_faults_apply_by_path_until_cleared(sandbox: SandboxServer) -> None:
    await sandbox.fault("500", path="/v2/")
    assert (await sandbox.http.get("/v2/avatars")).status_code == 500
    assert (await sandbox.http.get("/v2/voices")).status_code == 500
    assert (await sandbox.http.post("/v1/chat/completions", json=chat_body("x"))).status_code == 200
    listed = (await sandbox.http.get("/_sandbox/faults")).json()["faults"]
    assert [(f["fault"], f["path"]) for f in listed] == [("500", "/v2/")]
    await sandbox.clear_faults()
    assert (await sandbox.http.get("/v2/avatars")).status_code == 200

    await sandbox.fault("503x2")  # counted over every request it applies to
    statuses = [(await sandbox.http.get(path)).status_code for path in ("/v2/avatars",) * 3]
    assert statuses == [503, 503, 200]


async def test_bad_fault_specs_are_refused(sandbox: SandboxServer) -> None:
    reply = await sandbox.http.post(
        "/v1/chat/completions", json=chat_body("x"), headers={"X-Sandbox-Fault": "explode"}
    )
    assert reply.status_code == 400
    assert "explode" in reply.json()["error"]["message"]
    admin = await sandbox.http.post("/_sandbox/faults", json={"fault": "429x"})
    assert admin.status_code == 400


async def test_jobs_can_fail_stick_or_take_more_polls(sandbox: SandboxServer) -> None:
    async def statuses(prompt: str, polls: int) -> list[str]:
        created = await sandbox.http.post(
            "/api/rest/v1/generations", json={"prompt": prompt, "width": 32, "height": 32}
        )
        generation_id = created.json()["sdGenerationJob"]["generationId"]
        seen = []
        for _ in range(polls):
            reply = await sandbox.http.get(f"/api/rest/v1/generations/{generation_id}")
            seen.append(reply.json()["generations_by_pk"]["status"])
        return seen

    assert await statuses("[[fault:fail]]", 2) == ["PENDING", "FAILED"]
    assert await statuses("[[fault:stuck]]", 5) == ["PENDING"] * 5
    assert await statuses("[[fault:polls=4]]", 4) == ["PENDING"] * 3 + ["COMPLETE"]
    unknown = await sandbox.http.get("/api/rest/v1/generations/no-such-id")
    assert unknown.json() == {"generations_by_pk": None}


async def test_hang_answers_nothing(sandbox: SandboxServer) -> None:
    try:
        await sandbox.http.post(
            "/v1/chat/completions",
            json=chat_body("x"),
            headers={"X-Sandbox-Fault": "hang"},
            timeout=0.3,
        )
    except httpx.ReadTimeout:
        pass
    else:
        raise AssertionError("a hanging sandbox answered")
    [entry] = await sandbox.requests("/v1/chat/completions")
    assert (entry["status"], entry["fault"]) == (None, "hang")


async def test_latency_delays_the_answer(sandbox: SandboxServer) -> None:
    reply = await sandbox.http.post(
        "/v1/chat/completions",
        json=chat_body("x"),
        headers={"X-Sandbox-Fault": "latency=300"},
    )
    assert reply.status_code == 200
    assert reply.elapsed.total_seconds() >= 0.3
    [entry] = await sandbox.requests()
    assert entry["fault"] == "latency=300"


async def test_the_request_log_keeps_what_a_client_sent(sandbox: SandboxServer) -> None:
    body = {**chat_body("x"), "temperature": 0.7}
    body["messages"] = [{"role": "system", "content": "be brief"}, *body["messages"]]
    reply = await sandbox.http.post("/v1/chat/completions", json=body)
    assert reply.status_code == 200
    refused = await sandbox.http.post("/v1/chat/completions", content=b"not json")
    assert refused.status_code == 400
    logged = await sandbox.requests("/v1/chat/completions")
    assert [entry["json"] for entry in logged] == [body, None]
