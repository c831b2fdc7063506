"""Chat sessions and their history over REST, every response in the envelope."""

from __future__ import annotations

from tests.core.chat.conftest import LiveServer


async def test_create_list_get_delete(live: LiveServer) -> None:
    http = live.http
    created = await http.post("/chat/sessions", json={"title": "Quarterly report"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["success"] is True and body["error"] is None
    session = body["data"]
    assert isinstance(session["id"], int) and session["title"] == "Quarterly report"

    untitled = (await http.post("/chat/sessions")).json()["data"]
    assert untitled["title"] == "New chat"

    listed = (await http.get("/chat/sessions", params={"limit": 500})).json()
    ids = [s["id"] for s in listed["data"]]
    assert session["id"] in ids and untitled["id"] in ids
    assert listed["metadata"]["limit"] == 500

    fetched = (await http.get(f"/chat/sessions/{session['id']}")).json()["data"]
    assert fetched == session
    assert (await http.get(f"/chat/sessions/{session['id']}/messages")).json()["data"] == []

    deleted = await http.delete(f"/chat/sessions/{session['id']}")
    assert deleted.status_code == 200 and deleted.json()["data"]["deleted"] is True
    for path in (f"/chat/sessions/{session['id']}", f"/chat/sessions/{session['id']}/messages"):
        gone = await http.get(path)
        assert gone.status_code == 404
        assert gone.json()["error"]["error_code"] == "session_not_found"
    again = await http.delete(f"/chat/sessions/{session['id']}")
    assert again.status_code == 404


async def test_invalid_session_requests(live: LiveServer) -> None:
    too_long = await live.http.post("/chat/sessions", json={"title": "x" * 201})
    assert too_long.status_code == 422
    assert too_long.json()["error"]["error_code"] == "validation_error"
    not_a_number = await live.http.get("/chat/sessions/abc")
    assert not_a_number.status_code == 422


async def test_models_are_listed_with_availability(live: LiveServer) -> None:
    response = await live.http.get("/chat/models")
    assert response.status_code == 200
    models = {m["name"]: m for m in response.json()["data"]}
    assert models["smollm2"]["available"] is True and models["smollm2"]["default"] is True
    assert models["smollm2"]["backend"] == "llama_cpp"
    assert models["mistral"]["available"] is False  # its Ollama is not running
