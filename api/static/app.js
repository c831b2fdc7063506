// docchat's web page: uploads with live progress (SSE), the document list, and a chat pane on a
// session (WebSocket: streamed answers, typing indicators, task progress). No build step.
"use strict";

const $ = (id) => document.getElementById(id);

// --- settings: an optional API key and a display name, kept in this browser ---------------

const KEY_STORE = "docchat.apiKey";
const NAME_STORE = "docchat.userName";
const SESSION_STORE = "docchat.sessionId";

function apiKey() {
  return localStorage.getItem(KEY_STORE) || "";
}

function userName() {
  // A name set in Settings is kept; otherwise each tab gets its own, so two tabs on one
  // session see each other type.
  let name = localStorage.getItem(NAME_STORE) || sessionStorage.getItem(NAME_STORE);
  if (!name) {
    name = "guest-" + Math.random().toString(36).slice(2, 6);
    sessionStorage.setItem(NAME_STORE, name);
  }
  return name;
}

// The key never goes into a URL (URLs end up in access logs and browser history): sockets
// offer it as the subprotocol "bearer.<key>", streams send it in the Authorization header.
function socketProtocols() {
  const key = apiKey();
  return key ? ["docchat", "bearer." + key] : ["docchat"];
}

// --- errors in words -----------------------------------------------------------------------

const SENTENCES = {
  not_a_pdf: "This file is not a PDF.",
  unsupported_format:
    "docchat cannot read this kind of file. It reads PDF, Word, OpenDocument, PowerPoint, Excel, CSV, HTML, Markdown, text, EPUB, RTF and PNG/JPEG/TIFF images.",
  encrypted_document: "The document is password-protected. Remove the password and upload it again.",
  corrupt_document: "The document is damaged or incomplete and cannot be read.",
  decompression_bomb: "The file would unpack to far more data than this server accepts.",
  unsafe_xml: "The document contains XML constructs that are refused for safety.",
  ocr_limit_exceeded: "Recognising the text of this scan would take longer than this server allows.",
  empty_file: "The file is empty.",
  encrypted_pdf: "The PDF is password-protected. Remove the password and upload it again.",
  corrupt_pdf: "The PDF is damaged or incomplete and cannot be read.",
  no_extractable_text:
    "No text could be found in the document, not even by text recognition (OCR) of its images.",
  too_many_pages: "The PDF has more pages than this server accepts.",
  text_too_large: "The PDF holds more text than this server accepts.",
  file_missing: "The uploaded file is gone from the server. Upload it again.",
  file_too_large: "The file is larger than this server accepts.",
  request_too_large: "The request is larger than this server accepts.",
  payload_too_large: "The file is larger than this server accepts.",
  unsupported_media_type: "This file is not a PDF.",
  step_failed:
    "A processing step kept failing, for instance because a service was unreachable. Retry when it is back.",
  document_fault: "The document cannot be processed.",
  temporal_unavailable: "The processing service is unavailable. Try again in a moment.",
  service_unavailable: "A service the server needs is unavailable. Try again in a moment.",
  unauthorized: "The server needs a valid API key: enter it under Settings.",
  forbidden: "This key may not do that.",
  task_not_found: "The server no longer knows this task.",
  document_not_found: "The document no longer exists.",
  page_not_found: "This page has no extracted text.",
  session_not_found: "The chat session no longer exists.",
  unknown_model: "The server does not know this model.",
  model_not_available: "The model cannot answer right now.",
  llm_generation_failed: "The model failed while answering.",
  answer_in_progress: "Wait for the current answer to finish before asking again.",
  answer_cancelled: "The answer was stopped before it finished.",
  rate_limited: "Too many messages at once. Slow down a little.",
  retry_not_possible: "A retry cannot help this document; only a different file can.",
  task_not_failed: "The task has not failed, so there is nothing to retry.",
  task_finished: "The task has already ended.",
  validation_error: "The request was not valid.",
  network: "Cannot reach the docchat server.",
  internal_error: "The server failed unexpectedly; the error has been logged.",
};

function sentence(code, message) {
  return SENTENCES[code] || message || "Something went wrong.";
}

class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
  get sentence() {
    return sentence(this.code, this.message);
  }
}

function showError(text) {
  $("alert-text").textContent = text;
  $("alert").hidden = false;
}

function clearError() {
  $("alert").hidden = true;
  $("alert-text").textContent = "";
}

function report(error) {
  showError(error instanceof ApiError ? error.sentence : String(error.message || error));
}

// --- HTTP: the envelope in, an ApiError out --------------------------------------------------

function headers(extra) {
  const result = Object.assign({}, extra);
  const key = apiKey();
  if (key) result.Authorization = "Bearer " + key;
  return result;
}

async function api(path, {method = "GET", json} = {}) {
  const init = {method, headers: headers(json ? {"Content-Type": "application/json"} : {})};
  if (json !== undefined) init.body = JSON.stringify(json);
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError("network", "Cannot reach the docchat server.", 0);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new ApiError("http_" + response.status, response.statusText, response.status);
  }
  if (!response.ok || !body.success) {
    const error = body.error || {};
    throw new ApiError(error.error_code || "http_" + response.status, error.message, response.status);
  }
  return body.data;
}

// Uploads go through XMLHttpRequest: fetch cannot report how much of a body was sent.
// `replaces`: the id of the document this file is a new version of (docs/replace.md).
function sendFile(file, onSent, replaces) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", "/docs/upload_file_async");
    const key = apiKey();
    if (key) request.setRequestHeader("Authorization", "Bearer " + key);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onSent(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(request.responseText);
      } catch {
        /* not JSON: handled below */
      }
      if (body && body.success) return resolve(body.data);
      const error = (body && body.error) || {};
      reject(new ApiError(error.error_code || "http_" + request.status, error.message, request.status));
    });
    request.addEventListener("error", () =>
      reject(new ApiError("network", "Cannot reach the docchat server.", 0)));
    const form = new FormData();
    form.append("file", file, file.name);
    if (replaces) form.append("replaces", replaces);
    request.send(form);
  });
}

// --- uploads and their progress --------------------------------------------------------------

const STEP_WORDS = {
  upload: "Checking the document",
  extract: "Extracting text",
  chunk: "Splitting into passages",
  vectorize: "Indexing for search",
  done: "Finishing",
};

const rows = new Map(); // task id (or a temporary key while sending) → row
const streams = new Map(); // task id → its open progress stream ({close()})
let documentNames = new Map(); // document id → file name

// `status` is the seed's stage (pending, extracting, ..., completed, failed); `state` is the
// lifecycle behind it (queued, running, retrying, waiting_for_retry, failed, ...).
function stageOf(task) {
  switch (task.state) {
    case "completed": return "Ready";
    case "cancelled": return "Cancelled";
    case "failed":
    case "waiting_for_retry": return "Failed"; // the Retry button tells the two apart
    case "queued": return "Waiting for a worker";
    case "retrying": return (STEP_WORDS[task.current_step] || "Working") + ": retrying";
    default: return STEP_WORDS[task.current_step] || "Working";
  }
}

function detailOf(task) {
  const parts = [];
  if (task.page_count) parts.push(`page ${task.pages_extracted} of ${task.page_count}`);
  if (task.chunk_count) parts.push(`passage ${task.chunks_embedded} of ${task.chunk_count}`);
  if (task.state === "retrying" && task.attempt) {
    parts.push(`attempt ${task.attempt}` + (task.last_failure ? `: ${task.last_failure}` : ""));
  }
  return parts.join(" · ");
}

function makeRow(name) {
  const item = document.createElement("li");
  item.className = "upload";
  item.innerHTML = `
    <div class="upload-head"><span class="upload-name"></span>
      <span class="upload-stage" aria-live="polite"></span></div>
    <div class="upload-bar"><progress max="100" value="0"></progress>
      <span class="upload-pct" aria-hidden="true">0 %</span></div>
    <p class="upload-detail"></p>
    <p class="upload-error" role="alert" hidden></p>
    <div class="upload-actions"></div>`;
  const row = {
    item,
    name,
    label: item.querySelector(".upload-name"),
    taskId: null,
    value: 0,
    bar: item.querySelector("progress"),
    pct: item.querySelector(".upload-pct"),
    stage: item.querySelector(".upload-stage"),
    detail: item.querySelector(".upload-detail"),
    error: item.querySelector(".upload-error"),
    actions: item.querySelector(".upload-actions"),
  };
  setRowName(row, name);
  $("uploads").prepend(item);
  $("uploads-empty").hidden = true;
  return row;
}

function setRowName(row, name) {
  row.name = name;
  row.label.textContent = name;
  row.bar.setAttribute("aria-label", name);
}

function setBar(row, value) {
  row.value = Math.max(row.value, Math.min(100, value)); // never backwards within a task
  row.bar.value = row.value;
  row.bar.setAttribute("aria-valuetext", `${Math.floor(row.value)} percent`);
  row.pct.textContent = `${Math.floor(row.value)} %`;
}

function setRowError(row, text) {
  row.error.textContent = text || "";
  row.error.hidden = !text;
}

function setActions(row, task) {
  row.actions.replaceChildren();
  const active = ["queued", "running", "retrying"].includes(task.state);
  const waiting = task.state === "waiting_for_retry";
  if (waiting) {
    row.actions.append(actionButton("Retry", row, () => retryTask(row)));
  }
  if (active || waiting) {
    row.actions.append(actionButton("Cancel", row, () => cancelTask(row)));
  }
}

function actionButton(label, row, handler) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.setAttribute("aria-label", `${label} ${row.name}`);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await handler();
    } catch (error) {
      report(error);
      button.disabled = false;
    }
  });
  return button;
}

function showTask(task) {
  let row = rows.get(task.task_id);
  if (!row) {
    row = makeRow(documentNames.get(task.document_id) || "Document");
    row.taskId = task.task_id;
    rows.set(task.task_id, row);
    if (!documentNames.has(task.document_id)) {
      loadDocuments().then(() => {
        if (documentNames.has(task.document_id)) setRowName(row, documentNames.get(task.document_id));
      });
    }
  }
  row.item.className = `upload ${task.status}`;
  setBar(row, task.status === "completed" ? 100 : task.progress_percentage);
  row.stage.textContent = stageOf(task);
  row.detail.textContent = detailOf(task);
  setRowError(row, task.status === "failed"
    ? sentence(task.error_code, task.error_message) +
      (task.error_message && SENTENCES[task.error_code] ? ` (${task.error_message})` : "")
    : "");
  setActions(row, task);
  const over = ["completed", "cancelled", "failed"].includes(task.state);
  if (over && !row.over) {
    row.over = true;
    endedTasks.set(task.document_id, task.status);
    loadDocuments();
  } else if (!over) {
    row.over = false;
  }
}

// Progress of one task, pushed by the server (Server-Sent Events); a late joiner gets the
// current state first. Read with fetch rather than EventSource, which cannot send the
// Authorization header; after a network blip the stream is opened again.
function follow(taskId) {
  if (streams.has(taskId)) return;
  const stream = {closed: false, controller: new AbortController()};
  stream.close = () => {
    stream.closed = true;
    stream.controller.abort();
  };
  streams.set(taskId, stream);
  readTaskEvents(taskId, stream).finally(() => {
    if (streams.get(taskId) === stream) streams.delete(taskId);
  });
}

async function readTaskEvents(taskId, stream) {
  const url = `/docs/processing/${encodeURIComponent(taskId)}/events`;
  let retryDelay = 1000;
  while (!stream.closed) {
    let response;
    try {
      response = await fetch(url, {
        headers: headers({Accept: "text/event-stream"}),
        signal: stream.controller.signal,
      });
    } catch {
      if (stream.closed) return;
      await new Promise((resolve) => setTimeout(resolve, retryDelay));
      retryDelay = Math.min(retryDelay * 2, 15000);
      continue;
    }
    // Refused (e.g. the task was deleted, or the key is wrong): nothing more will come.
    if (!response.ok || !response.body) return;
    retryDelay = 1000;
    try {
      if (await readEvents(response.body, stream)) return; // "end": the task is over
    } catch {
      if (stream.closed) return; // aborted by close()
    }
  }
}

// Parses a text/event-stream body; true once an "end" event arrived.
async function readEvents(body, stream) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return false;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (name === "progress" && data.length) showTask(JSON.parse(data.join("\n")));
      if (name === "end") {
        stream.close();
        return true;
      }
    }
  }
}

async function retryTask(row) {
  const task = await api(`/docs/processing/${row.taskId}/retry`, {method: "POST"});
  showTask(task);
  follow(row.taskId);
}

async function cancelTask(row) {
  const task = await api(`/docs/processing/${row.taskId}/cancel`, {method: "POST"});
  showTask(task);
  follow(row.taskId);
}

async function uploadFiles(files) {
  clearError();
  await Promise.all(Array.from(files).map((file) => uploadOne(file)));
}

async function uploadOne(file, replaces) {
  const row = makeRow(file.name);
  row.stage.textContent = "Uploading";
  try {
    // Sending the bytes is the first part of the upload quarter of the bar.
    const accepted = await sendFile(file, (fraction) => setBar(row, fraction * 20), replaces);
    row.taskId = accepted.task_id;
    documentNames.set(accepted.document_id, accepted.filename);
    const existing = rows.get(accepted.task_id);
    if (existing && existing !== row) {
      // The same task is shown already: a duplicate upload, or the page's list of active
      // tasks found it before this answer came (then its row had no name yet).
      setRowName(existing, accepted.filename);
      row.item.remove();
      return;
    }
    rows.set(accepted.task_id, row);
    if (accepted.duplicate) row.detail.textContent = "Already uploaded: this is the existing copy.";
    else if (replaces) row.detail.textContent = "New version: only changed passages are indexed again.";
    follow(accepted.task_id);
    chat.watch([accepted.task_id]);
  } catch (error) {
    row.item.className = "upload failed";
    row.stage.textContent = "Not uploaded";
    setRowError(row, error instanceof ApiError ? error.sentence : String(error));
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.textContent = "Dismiss";
    dismiss.setAttribute("aria-label", `Dismiss ${file.name}`);
    dismiss.addEventListener("click", () => {
      row.item.remove();
      $("uploads-empty").hidden = $("uploads").children.length > 0;
    });
    row.actions.replaceChildren(dismiss);
  }
}

function setUpDropZone() {
  const zone = $("drop-zone");
  $("file-input").addEventListener("change", (event) => {
    uploadFiles(event.target.files);
    event.target.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    // Whatever is dropped is sent, of any format: the server tells the format by the bytes,
    // and refuses what it cannot read with a reason the row shows.
    if (event.dataTransfer.files.length) uploadFiles(event.dataTransfer.files);
  });
}

// --- the document list -----------------------------------------------------------------------

const STATUS_WORDS = {processing: "Processing", ready: "Ready", failed: "Failed", cancelled: "Cancelled"};

let documentsVersion = 0;
const endedTasks = new Map(); // document id → how its task ended, as the task itself said

async function loadDocuments() {
  const version = ++documentsVersion;
  let documents;
  try {
    documents = await api("/docs?limit=200");
  } catch (error) {
    report(error);
    return;
  }
  if (version !== documentsVersion) return; // a newer list is on its way
  documentNames = new Map(documents.map((d) => [d.id, d.filename]));
  const body = $("documents").querySelector("tbody");
  body.replaceChildren(...documents.map(documentRow));
  $("documents-empty").hidden = documents.length > 0;
}

const DOCUMENT_STATUS_OF_TASK = {completed: "ready", failed: "failed", cancelled: "cancelled"};

function documentRow(doc) {
  const row = document.createElement("tr");
  if (doc.status === "processing" && endedTasks.has(doc.id)) {
    // The row is written a moment after the task ends; the task's own word is newer.
    doc = {...doc, status: DOCUMENT_STATUS_OF_TASK[endedTasks.get(doc.id)] || doc.status};
  }
  const cells = [doc.filename, STATUS_WORDS[doc.status] || doc.status, doc.page_count ?? "–"];
  for (const text of cells) {
    const cell = document.createElement("td");
    cell.textContent = String(text);
    row.append(cell);
  }
  row.children[1].className = `status-${doc.status}`;
  const actions = document.createElement("td");
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "Delete";
  remove.setAttribute("aria-label", `Delete ${doc.filename}`);
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete ${doc.filename}? Its passages will no longer be searched.`)) return;
    remove.disabled = true;
    try {
      await api(`/docs/${encodeURIComponent(doc.id)}`, {method: "DELETE"});
    } catch (error) {
      report(error);
    }
    await loadDocuments();
  });
  // While a new version is made the server answers document_busy, shown like any error.
  if (doc.status === "ready") actions.append(replaceButton(doc));
  actions.append(remove);
  row.append(actions);
  return row;
}

// A new version of the document: search keeps the current one until the new one is indexed.
function replaceButton(doc) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Replace file";
  button.setAttribute("aria-label", `Replace file of ${doc.filename}`);
  const picker = document.createElement("input");
  picker.type = "file";
  picker.hidden = true;
  picker.setAttribute("aria-label", `New version of ${doc.filename}`);
  picker.addEventListener("change", async () => {
    const [file] = picker.files;
    if (!file) return;
    clearError();
    button.disabled = true;
    await uploadOne(file, doc.id);
    await loadDocuments();
  });
  button.addEventListener("click", () => picker.click());
  const both = document.createDocumentFragment();
  both.append(button, picker);
  return both;
}

// Tasks still running when the page opens get their progress bars too.
async function loadActiveTasks() {
  try {
    for (const task of await api("/docs/processing/active")) {
      showTask(task);
      follow(task.task_id);
    }
  } catch (error) {
    report(error);
  }
}

// --- chat --------------------------------------------------------------------------------------

const chat = {
  sessionId: null,
  socket: null,
  retryDelay: 1000,
  drafts: new Map(), // reply_to → the answer's article while it streams
  shown: new Set(), // ids of messages on screen
  typers: new Map(), // user id → timer that forgets a lapsed indicator
  typingSince: 0,
  typingTimer: null,
  pending: [], // frames waiting for the socket to open

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  },

  watch(taskIds) {
    if (!this.send({type: "watch_tasks", task_ids: taskIds})) this.pending.push(...taskIds);
  },

  connect(sessionId) {
    this.disconnect();
    this.sessionId = sessionId;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/chat/${sessionId}/ws`;
    const socket = new WebSocket(url, socketProtocols());
    this.socket = socket;
    setConnection("Connecting…", false);
    socket.addEventListener("open", () => {
      this.retryDelay = 1000;
      setConnection("Live", true);
      const active = [...rows.values()]
        .filter((row) => row.taskId && !row.over)
        .map((row) => row.taskId);
      const wanted = [...new Set([...this.pending, ...active])];
      this.pending = [];
      if (wanted.length) this.send({type: "watch_tasks", task_ids: wanted});
      // Typing that began before this socket opened (a new session, a reconnect) is told now,
      // not only at the next key.
      if (this.typingTimer !== null && !this.typingSince) this.typed();
    });
    socket.addEventListener("message", (event) => this.receive(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return; // replaced by another session's socket
      this.socket = null;
      setConnection("Not connected", false);
      if (event.code === 4404) {
        showError(event.reason || SENTENCES.session_not_found);
        loadSessions();
      } else if (event.code === 4401) {
        showError(sentence("unauthorized", event.reason));
      } else if (event.code !== 1000) {
        setConnection(`Reconnecting in ${Math.round(this.retryDelay / 1000)} s…`, false);
        setTimeout(() => {
          if (this.sessionId === sessionId && !this.socket) this.connect(sessionId);
        }, this.retryDelay);
        this.retryDelay = Math.min(this.retryDelay * 2, 15000);
      }
    });
  },

  disconnect() {
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000);
    for (const timer of this.typers.values()) clearTimeout(timer);
    this.typers.clear();
    renderTyping();
  },

  receive(msg) {
    switch (msg.type) {
      case "message":
        addMessage(msg.message);
        break;
      case "status":
        draftFor(msg.reply_to).status.textContent =
          msg.status === "retrieving" ? "Searching your documents…" : `Writing (${msg.model})…`;
        break;
      case "model_fallback":
        draftFor(msg.reply_to).status.textContent =
          `${msg.requested_model} cannot answer; ${msg.model} answers instead…`;
        break;
      case "chunk": {
        const draft = draftFor(msg.reply_to);
        // A resumed chunk (after a reconnect) is the whole answer so far: it replaces the draft.
        if (msg.resumed) draft.body.replaceChildren();
        draft.body.append(msg.content); // a text node: nothing in it is taken for markup
        scrollMessages();
        break;
      }
      case "complete":
        finishDraft(msg.reply_to, msg.message);
        break;
      case "error":
        if (msg.reply_to !== undefined && msg.reply_to !== null) {
          failDraft(msg.reply_to, msg.error);
        } else if (msg.task_id) {
          const row = rows.get(msg.task_id);
          if (row) setRowError(row, sentence(msg.error.error_code, msg.error.message));
        }
        showError(sentence(msg.error.error_code, msg.error.message));
        break;
      case "typing_update":
        if (msg.user_id !== userName()) noteTyping(msg.user_id, msg.is_typing);
        break;
      case "task_progress":
        showTask(msg);
        break;
      case "session_deleted":
        showError("This chat session was deleted.");
        break;
      case "ping":
        this.send({type: "pong"});
        break;
      default:
        break; // connected, pong
    }
  },

  typed() {
    const now = Date.now();
    if (now - this.typingSince > 2000) {
      // The server forgets an indicator 5 s after its last refresh.
      if (this.send({type: "typing", user_id: userName(), is_typing: true})) this.typingSince = now;
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.stoppedTyping(), 3000);
  },

  stoppedTyping() {
    clearTimeout(this.typingTimer);
    this.typingTimer = null;
    if (this.typingSince) this.send({type: "typing", user_id: userName(), is_typing: false});
    this.typingSince = 0;
  },
};

function setConnection(text, live) {
  $("connection").textContent = text;
  $("connection").classList.toggle("live", live);
}

function noteTyping(user, isTyping) {
  clearTimeout(chat.typers.get(user));
  chat.typers.delete(user);
  if (isTyping) {
    // Forgotten on our side too if the server's "stopped" never arrives.
    chat.typers.set(user, setTimeout(() => noteTyping(user, false), 7000));
  }
  renderTyping();
}

function renderTyping() {
  const names = [...chat.typers.keys()];
  $("typing").textContent =
    names.length === 0 ? "" :
    names.length === 1 ? `${names[0]} is typing…` :
    `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]} are typing…`;
}

function scrollMessages() {
  const box = $("messages");
  box.scrollTop = box.scrollHeight;
}

function article(role, who) {
  const node = document.createElement("article");
  node.className = `message ${role}`;
  const header = document.createElement("p");
  header.className = "message-who";
  header.textContent = who;
  const body = document.createElement("div"); // an answer's quotes are blockquotes in it
  body.className = "message-body";
  const status = document.createElement("p");
  status.className = "message-status";
  node.append(header, body, status);
  $("messages").append(node);
  scrollMessages();
  return {node, header, body, status};
}

function addMessage(message) {
  if (chat.shown.has(message.id)) return;
  chat.shown.add(message.id);
  if (message.role === "user") {
    const view = article("user", message.user_id || "Someone");
    view.body.textContent = message.content;
  } else {
    const view = article("assistant", "docchat" + (message.model ? ` (${message.model})` : ""));
    renderAnswer(view.body, message.content, message.sources);
    addSources(view.node, message.sources);
  }
}

function draftFor(replyTo) {
  let draft = chat.drafts.get(replyTo);
  if (!draft) {
    draft = article("assistant", "docchat");
    draft.node.setAttribute("aria-busy", "true"); // read out once whole, not piece by piece
    chat.drafts.set(replyTo, draft);
  }
  return draft;
}

function finishDraft(replyTo, message) {
  const draft = draftFor(replyTo);
  chat.drafts.delete(replyTo);
  chat.shown.add(message.id);
  draft.header.textContent = "docchat" + (message.model ? ` (${message.model})` : "");
  renderAnswer(draft.body, message.content, message.sources);
  draft.status.remove();
  addSources(draft.node, message.sources);
  draft.node.removeAttribute("aria-busy");
  scrollMessages();
}

// An answer's paragraphs: "> quote [n]" ones (the document's own words) become blockquotes
// with a button that opens source n; the rest stays text. Text nodes only, never markup.
function renderAnswer(body, content, sources) {
  body.replaceChildren();
  content.split(/\n{2,}/).forEach((part) => {
    const quoted = /^> ?([\s\S]*?)(?:\s*\[(\d+)\])?\s*$/.exec(part);
    if (!part.startsWith(">") || !quoted) {
      const text = document.createElement("p");
      text.textContent = part;
      body.append(text);
      return;
    }
    const quote = document.createElement("blockquote");
    quote.className = "quote";
    quote.append(quoted[1]);
    const number = Number(quoted[2]);
    const source = sources && sources[number - 1];
    if (source) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "source";
      button.textContent = `[${number}] ${source.filename}, page ${source.page}`;
      button.addEventListener("click", () => openSource(source, number));
      quote.append(" ", button);
    }
    body.append(quote);
  });
}

function failDraft(replyTo, error) {
  const draft = draftFor(replyTo);
  chat.drafts.delete(replyTo);
  draft.node.classList.add("failed");
  draft.status.remove();
  const note = document.createElement("p");
  note.className = "message-error";
  note.textContent = sentence(error.error_code, error.message);
  draft.node.append(note);
  draft.node.removeAttribute("aria-busy");
}

// Where a source is, as the server labels it ("page 3", "slide 2", "§Setup"); sources saved
// before labels existed carry only a page number.
function where(source) {
  return source.label || `page ${source.page}`;
}

function addSources(node, sources) {
  if (!sources || !sources.length) return;
  const list = document.createElement("ol");
  list.className = "sources";
  list.setAttribute("aria-label", "Sources");
  sources.forEach((source, index) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "source";
    button.textContent = `[${index + 1}] ${source.filename}, ${where(source)}`;
    button.addEventListener("click", () => openSource(source, index + 1));
    item.append(button);
    list.append(item);
  });
  node.append(list);
}

async function openSource(source, number) {
  const dialog = $("source-dialog");
  $("source-title").textContent = `[${number}] ${source.filename}, ${where(source)}`;
  $("source-snippet").textContent = source.snippet;
  $("source-text").replaceChildren();
  $("source-status").textContent = "Loading the page…";
  if (!dialog.open) dialog.showModal();
  try {
    const page = await api(
      `/docs/${encodeURIComponent(source.document_id)}/pages/${encodeURIComponent(source.page)}`);
    $("source-status").textContent = "";
    showPage(page.text, source.snippet);
  } catch (error) {
    $("source-status").textContent =
      error instanceof ApiError ? error.sentence : String(error.message || error);
  }
}

// The page's text with the cited passage marked (matched on its first words, whitespace-blind).
function showPage(text, snippet) {
  const box = $("source-text");
  const words = snippet.replace(/…$/, "").split(/\s+/).filter(Boolean).slice(0, 8);
  const pattern = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("\\s+");
  const found = pattern ? new RegExp(pattern).exec(text) : null;
  if (!found) {
    box.textContent = text;
    return;
  }
  const mark = document.createElement("mark");
  mark.textContent = found[0];
  box.append(text.slice(0, found.index), mark, text.slice(found.index + found[0].length));
  mark.scrollIntoView({block: "center"});
}

let sessionsVersion = 0; // a list that arrives after a newer one (or a choice) is dropped

async function loadSessions(selectId) {
  const version = ++sessionsVersion;
  let sessions;
  try {
    sessions = await api("/chat/sessions?limit=100");
  } catch (error) {
    report(error);
    return;
  }
  if (version !== sessionsVersion) return;
  const select = $("session-select");
  select.replaceChildren(...sessions.map((s) => new Option(`#${s.id} ${s.title}`, String(s.id))));
  if (!sessions.length) select.append(new Option("No sessions yet", ""));
  const stored = Number(localStorage.getItem(SESSION_STORE));
  const wanted = selectId ?? (sessions.some((s) => s.id === stored) ? stored : sessions[0]?.id);
  if (wanted) {
    select.value = String(wanted);
    await openSession(wanted);
  } else {
    chat.disconnect();
    chat.sessionId = null;
    $("messages").replaceChildren();
  }
}

async function openSession(sessionId) {
  localStorage.setItem(SESSION_STORE, String(sessionId));
  chat.drafts.clear();
  chat.shown.clear();
  $("messages").replaceChildren();
  chat.connect(sessionId); // first, so nothing said meanwhile is missed (shown ids dedupe)
  try {
    for (const message of await api(`/chat/sessions/${sessionId}/messages?limit=200`)) {
      addMessage(message);
    }
  } catch (error) {
    report(error);
  }
}

async function newSession() {
  const title = "Chat, " + new Date().toLocaleString([], {dateStyle: "short", timeStyle: "short"});
  const session = await api("/chat/sessions", {method: "POST", json: {title}});
  await loadSessions(session.id);
  return session.id;
}

async function loadModels() {
  try {
    const models = await api("/chat/models");
    const select = $("model-select");
    select.replaceChildren(...models.map((m) => {
      const option = new Option(m.name + (m.available ? "" : " (unavailable)"), m.name);
      option.title = m.description;
      option.selected = m.default;
      return option;
    }));
  } catch (error) {
    report(error);
  }
}

async function ask(event) {
  event.preventDefault();
  const input = $("question");
  const question = input.value.trim();
  if (!question) return;
  clearError();
  try {
    if (chat.sessionId === null) await newSession();
    await waitForSocket();
  } catch (error) {
    report(error);
    return;
  }
  const frame = {type: "chat_message", question, user_id: userName()};
  if ($("model-select").value) frame.model = $("model-select").value;
  if (!chat.send(frame)) {
    showError("Not connected to the chat; trying again in a moment.");
    return;
  }
  chat.typingSince = 0; // asking clears our indicator on the server
  clearTimeout(chat.typingTimer);
  chat.typingTimer = null;
  input.value = "";
}

function waitForSocket(timeout = 5000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = () => {
      if (chat.socket && chat.socket.readyState === WebSocket.OPEN) return resolve();
      if (Date.now() - started > timeout) return reject(new Error("The chat is not connected."));
      setTimeout(check, 50);
    };
    check();
  });
}

// --- wiring ------------------------------------------------------------------------------------

function setUpSettings() {
  $("api-key").value = apiKey();
  $("user-name").value = localStorage.getItem(NAME_STORE) || "";
  $("user-name").placeholder = userName();
  $("settings-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (key) localStorage.setItem(KEY_STORE, key);
    else localStorage.removeItem(KEY_STORE);
    const name = $("user-name").value.trim();
    if (name) localStorage.setItem(NAME_STORE, name);
    else localStorage.removeItem(NAME_STORE);
    event.target.closest("details").open = false;
    $("settings-status").textContent = "Settings saved.";
    setTimeout(() => ($("settings-status").textContent = ""), 2000);
    start(); // reload everything with the new key
  });
}

// --- index versions and the re-index (docs/search.md#index-versions) ----------------------

const REINDEX_ENDED = ["completed", "cancelled", "waiting_for_retry"];
let reindexTimer = null;

async function loadIndex() {
  const index = await api("/index/versions");
  $("index-status").textContent = index.matches
    ? `Index version ${index.active_version} is active and matches the settings.`
    : index.action;
  $("reindex").classList.toggle("primary", !index.matches);
  try {
    showReindex(await api("/index/reindex"));
  } catch (error) {
    if (error.status !== 404) throw error; // 404: no re-index has run yet
  }
}

function showReindex(state) {
  const box = $("reindex-progress");
  box.hidden = false;
  const bar = $("reindex-bar");
  bar.value = state.progress_percentage;
  bar.setAttribute("aria-valuetext", `${Math.floor(state.progress_percentage)} percent`);
  const rate = state.chunks_per_second ? `, ${Math.round(state.chunks_per_second)} chunks/s` : "";
  const eta = state.eta_seconds ? `, about ${Math.ceil(state.eta_seconds)} s left` : "";
  const failed = state.failed.length ? `, ${state.failed.length} failed` : "";
  $("reindex-text").textContent =
    `${state.status}: ${state.documents_done}/${state.documents_total} documents, ` +
    `${state.chunks_done}/${state.chunks_total} chunks${rate}${eta}${failed}`;
  const running = !REINDEX_ENDED.includes(state.status);
  $("reindex-pause").hidden = !running;
  $("reindex-pause").textContent = state.status === "paused" ? "Resume" : "Pause";
  $("reindex-cancel").hidden = !running && state.status !== "waiting_for_retry";
  $("reindex").textContent = state.status === "waiting_for_retry" ? "Retry failed" : "Re-index";
  $("reindex").disabled = running;
  clearTimeout(reindexTimer);
  if (running) {
    reindexTimer = setTimeout(() => api("/index/reindex").then(showReindex).catch(report), 1000);
  } else if (state.status === "completed") {
    api("/index/versions").then((index) => {
      $("index-status").textContent = `Index version ${index.active_version} is active.`;
    }).catch(report);
  }
}

async function steerReindex(action) {
  clearError();
  try {
    showReindex(await api(`/index/reindex/${action}`, {method: "POST"}));
  } catch (error) {
    report(error);
  }
}

function setUpReindex() {
  $("reindex").addEventListener("click", async () => {
    if ($("reindex").textContent === "Retry failed") return steerReindex("retry");
    clearError();
    try {
      showReindex(await api("/index/reindex", {method: "POST"}));
    } catch (error) {
      report(error);
    }
  });
  $("reindex-pause").addEventListener("click", () =>
    steerReindex($("reindex-pause").textContent === "Resume" ? "resume" : "pause"));
  $("reindex-cancel").addEventListener("click", () => steerReindex("cancel"));
}

function start() {
  clearError();
  loadDocuments().then(loadActiveTasks);
  loadIndex().catch(report);
  loadModels();
  loadSessions();
}

document.addEventListener("DOMContentLoaded", () => {
  setUpSettings();
  setUpDropZone();
  setUpReindex();
  $("alert-close").addEventListener("click", clearError);
  $("refresh-documents").addEventListener("click", loadDocuments);
  $("new-session").addEventListener("click", () => newSession().catch(report));
  $("session-select").addEventListener("change", (event) => {
    sessionsVersion++; // the person's choice wins over a list still loading
    if (event.target.value) openSession(Number(event.target.value));
  });
  $("ask-form").addEventListener("submit", ask);
  const question = $("question");
  question.addEventListener("input", () => chat.typed());
  question.addEventListener("blur", () => chat.stoppedTyping());
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      $("ask-form").requestSubmit();
      event.preventDefault();
    }
  });
  start();
});
