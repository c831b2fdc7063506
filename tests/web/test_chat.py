"""The chat pane in a real browser: a streamed answer with sources whose page text opens,
typing indicators between two pages on one session, the API key sent on every channel."""

from __future__ import annotations

from playwright.async_api import BrowserContext, Page, Request, expect

from tests.servers import LiveApi
from tests.web.conftest import SLOW_MS, open_page, page_errors

# Counts the pieces appended to an answer while it is still streaming (aria-busy).
RECORD_STREAM = """() => {
  window.streamedPieces = 0;
  new MutationObserver((records) => {
    for (const record of records) {
      const answer = record.target.closest && record.target.closest("article[aria-busy=true]");
      if (answer && record.addedNodes.length) window.streamedPieces += 1;
    }
  }).observe(document.getElementById("messages"), {subtree: true, childList: true});
}"""


async def new_session(page: Page) -> str:
    """Make a session from the page; its id."""
    select = page.get_by_label("Session")
    before = await select.input_value()
    await page.get_by_role("button", name="New session").click()
    await expect(select).not_to_have_value(before)
    await expect(page.locator("#connection")).to_have_text("Live")
    return await select.input_value()


async def joined(context: BrowserContext, web: LiveApi, session_id: str) -> Page:
    """Another page, on the chat of ``session_id`` and connected to it."""
    page = await open_page(context, web)
    await page.get_by_label("Session").select_option(session_id)
    await expect(page.locator("#connection")).to_have_text("Live")
    return page


async def test_question_streams_an_answer_with_sources_that_open(
    web: LiveApi, context: BrowserContext
) -> None:
    page = await open_page(context, web)
    await new_session(page)
    await page.evaluate(RECORD_STREAM)

    question = page.get_by_label("Your question")
    await question.fill("What is the capital of Austria?")
    await question.press("Enter")

    log = page.get_by_role("log", name="Conversation")
    asked = log.locator("article.user")
    await expect(asked).to_contain_text("What is the capital of Austria?")
    answer = log.locator("article.assistant")
    sources = answer.get_by_role("list", name="Sources").get_by_role("button")
    await expect(sources.first).to_be_visible(timeout=SLOW_MS)
    await expect(answer).not_to_have_attribute("aria-busy", "true")
    await expect(answer).to_contain_text("docchat (smollm2)")
    assert (await answer.locator(".message-body").inner_text()).strip()
    # The answer leads with the document's own sentence, shown as a quote with its source.
    quote = answer.locator(".message-body blockquote.quote").first
    await expect(quote).to_contain_text("Vienna")
    await expect(quote.get_by_role("button")).to_have_text("[1] multicolumn.pdf, page 3")
    assert await page.evaluate("window.streamedPieces") > 1, "the answer arrived in pieces"
    await expect(question).to_have_value("")

    # The first source is page 3 of multicolumn.pdf; clicking it shows that page's text.
    await expect(sources.first).to_have_text("[1] multicolumn.pdf, page 3")
    await sources.first.click()
    dialog = page.get_by_role("dialog", name="[1] multicolumn.pdf, page 3")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("#source-text")).to_contain_text("Vienna")
    await expect(dialog.locator("#source-text mark")).not_to_have_count(0)
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_be_hidden()

    # The history is there after a reload too, sources included.
    await page.reload()
    await expect(page.locator("#connection")).to_have_text("Live")
    log = page.get_by_role("log")
    reloaded = log.get_by_role("list", name="Sources").get_by_role(
        "button", name="[1] multicolumn.pdf, page 3"
    )
    await expect(reloaded).to_be_visible()
    await expect(log.locator("blockquote.quote").first).to_contain_text("Vienna")  # from history
    assert page_errors(page) == []


async def test_two_pages_on_one_session_see_each_other_type(
    web: LiveApi, context: BrowserContext
) -> None:
    alice = await open_page(context, web)
    bob = await joined(context, web, await new_session(alice))
    alice_name = await alice.evaluate("userName()")
    bob_name = await bob.evaluate("userName()")
    assert alice_name != bob_name

    await alice.get_by_label("Your question").press_sequentially("How many", delay=30)
    await expect(bob.locator("#typing")).to_have_text(f"{alice_name} is typing…")
    await expect(alice.locator("#typing")).to_have_text("")  # not told about yourself

    await bob.get_by_label("Your question").press_sequentially("Hi", delay=30)
    await expect(alice.locator("#typing")).to_have_text(f"{bob_name} is typing…")

    # Leaving the field says so at once (well before the indicator would lapse).
    await alice.get_by_label("Session").focus()
    await expect(bob.locator("#typing")).to_have_text("", timeout=2_000)
    assert page_errors(alice) == [] and page_errors(bob) == []


async def test_the_api_key_goes_with_every_request_and_socket(
    web: LiveApi, context: BrowserContext
) -> None:
    page = await open_page(context, web)
    await page.get_by_text("Settings", exact=True).click()
    await page.get_by_label("API key").fill("k-1234567890abcdef")
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    await page.get_by_role("button", name="Save").click()
    await new_session(page)

    api_calls = [r for r in requests if r.url.startswith(web.url + "/docs") and r.method == "GET"]
    assert api_calls, [r.url for r in requests]
    # The key never goes into a URL (access logs, history): headers, and a socket subprotocol.
    assert all("token=" not in request.url for request in requests), [r.url for r in requests]
    for request in api_calls:
        assert await request.header_value("authorization") == "Bearer k-1234567890abcdef"
    assert sockets and all("token=" not in url for url in sockets), sockets
    assert await page.evaluate("chat.socket.protocol") == "docchat"
    # A task's progress stream too (fetch, not EventSource, which cannot send headers).
    async with page.expect_request(lambda request: "/events" in request.url) as followed:
        await page.evaluate("follow('no-such-task')")
    stream = await followed.value
    assert "token=" not in stream.url
    assert await stream.header_value("authorization") == "Bearer k-1234567890abcdef"
    assert await stream.header_value("accept") == "text/event-stream"
    assert await page.evaluate("localStorage.getItem('docchat.apiKey')") == "k-1234567890abcdef"
    assert page_errors(page) == []


async def test_typing_begun_while_the_socket_connects_is_told_once_it_opens(
    web: LiveApi, context: BrowserContext
) -> None:
    bob = await open_page(context, web)
    session_id = await new_session(bob)
    alice = await joined(context, web, session_id)
    alice_name = await alice.evaluate("userName()")

    # A key pressed while the page is (re)connecting cannot be sent yet; no further key follows.
    state = await alice.evaluate(
        "(id) => { chat.connect(id); const s = chat.socket.readyState; chat.typed(); return s; }",
        session_id,
    )
    assert state == 0  # WebSocket.CONNECTING
    await expect(bob.locator("#typing")).to_have_text(f"{alice_name} is typing…")
    assert page_errors(alice) == [] and page_errors(bob) == []
